using CoeffTune.Checkpoints;
using CoeffTune.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Checkpoints;

public sealed class VitCheckpointTests
{
    private static readonly VitConfig Small = new()
    { ImageSize = 16, PatchSize = 4, Channels = 3, Dim = 32, Depth = 2, Heads = 4, MlpDim = 64, Classes = 5, LayerNormEps = 1e-6 };

    /// <summary>
    /// A round trip: this library's own weights, written under the timm and Hugging Face names it believes in
    /// (qkv fused by <see cref="CheckpointTestFiles.VitToTimm"/>), load back into identical models. The fusing and
    /// the splitting share the same belief about q/k/v order, so this cannot show the layouts are timm's or
    /// Hugging Face's; <see cref="ReferenceCheckpointTests"/> checks against checkpoints and outputs made independently.
    /// </summary>
    [Fact]
    public void Own_weights_under_timm_and_hugging_face_names_load_back_with_identical_outputs()
    {
        var dir = CheckpointTestFiles.TempDir();
        using var original = new VisionTransformer(Small);
        CheckpointTestFiles.Randomize(original, seed: 1);
        original.eval();

        var timmPath = Path.Combine(dir, "timm", "model.safetensors");
        var hfPath = Path.Combine(dir, "hf", "model.safetensors");
        Directory.CreateDirectory(Path.GetDirectoryName(timmPath)!);
        Directory.CreateDirectory(Path.GetDirectoryName(hfPath)!);
        Safetensors.SaveStateDict(timmPath, CheckpointTestFiles.VitToTimm(original));
        Safetensors.SaveStateDict(hfPath, CheckpointTestFiles.VitToHuggingFace(original));
        // Hugging Face keeps heads and eps in config.json; timm's eps is its default 1e-6, heads are passed.
        File.WriteAllText(Path.Combine(dir, "hf", "config.json"), """{"num_attention_heads": 4, "layer_norm_eps": 1e-6}""");

        var (fromTimm, timmReport) = VitCheckpoint.Load(timmPath, heads: 4);
        var (fromHf, hfReport) = VitCheckpoint.Load(hfPath);
        using (fromTimm)
        using (fromHf)
        {
            Assert.Equal(Small, fromTimm.Config);
            Assert.Equal(Small, fromHf.Config);
            Assert.Empty(timmReport.Missing);
            Assert.Empty(hfReport.Missing);
            Assert.Equal(original.state_dict().Count, hfReport.Loaded.Count);
            fromTimm.eval();
            fromHf.eval();
            using var scope = NewDisposeScope();
            using var images = new Batch(randn(3, 3, 16, 16, generator: new Generator(7)));
            var expected = original.forward(images);
            double timmDiff = (fromTimm.forward(images) - expected).abs().max().item<float>();
            double hfDiff = (fromHf.forward(images) - expected).abs().max().item<float>();
            Assert.Equal(0.0, timmDiff);
            Assert.Equal(0.0, hfDiff);
        }
        Directory.Delete(dir, true);
    }

    [Fact]
    public void Half_precision_checkpoint_loads_as_float32_with_a_fresh_head()
    {
        var dir = CheckpointTestFiles.TempDir();
        using var original = new VisionTransformer(Small);
        CheckpointTestFiles.Randomize(original, seed: 2);
        var half = CheckpointTestFiles.VitToTimm(original).ToDictionary(kv => kv.Key, kv => kv.Value.to_type(ScalarType.BFloat16));
        var path = Path.Combine(dir, "model.safetensors");
        Safetensors.SaveStateDict(path, half);

        var (model, report) = VitCheckpoint.Load(path, classes: 7, heads: 4);
        using (model)
        {
            Assert.Equal(7, model.Config.Classes);
            Assert.Contains("head.weight", report.Ignored);
            Assert.Equal(new[] { "head.bias", "head.weight" }, report.Missing.Order());
            Assert.All(model.parameters(), p => Assert.Equal(ScalarType.Float32, p.dtype));
            var expected = original.blocks[1].mlp.fc1.weight!.to_type(ScalarType.BFloat16).to_type(ScalarType.Float32);
            Assert.True(model.blocks[1].mlp.fc1.weight!.allclose(expected, rtol: 0, atol: 0));
        }
        Directory.Delete(dir, true);
    }
}
