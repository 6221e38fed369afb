using CoeffTune.Checkpoints;
using CoeffTune.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Checkpoints;

public sealed class BertCheckpointTests : IDisposable
{
    private static readonly BertConfig Small = new()
    { VocabSize = 40, Dim = 16, Depth = 2, Heads = 2, IntermediateDim = 32, MaxPositions = 24, Classes = 3 };

    private readonly string dir = CheckpointTestFiles.TempDir();
    private readonly BertClassifier original;

    public BertCheckpointTests()
    {
        original = new BertClassifier(Small);
        CheckpointTestFiles.Randomize(original, seed: 3);
        original.eval();
    }

    public void Dispose()
    {
        original.Dispose();
        Directory.Delete(dir, true);
    }

    private string Save(Dictionary<string, Tensor> dict, string name = "model.safetensors")
    {
        var path = Path.Combine(dir, name);
        Safetensors.SaveStateDict(path, dict);
        return path;
    }

    /// <summary>
    /// A round trip: this library's own weights, written under the Hugging Face names it believes in, load back
    /// into an identical model (also through gamma/beta names and a position_ids buffer). It cannot show that the
    /// names or the computation are Hugging Face's, since both sides share those beliefs;
    /// <see cref="ReferenceCheckpointTests"/> checks against checkpoints and outputs made independently.
    /// </summary>
    [Fact]
    public void Own_weights_under_hugging_face_names_load_back_with_identical_outputs()
    {
        var hf = CheckpointTestFiles.BertToHuggingFace(original);
        // Older conversions call LayerNorm's parameters gamma and beta.
        hf["bert.embeddings.LayerNorm.gamma"] = hf["bert.embeddings.LayerNorm.weight"];
        hf["bert.embeddings.LayerNorm.beta"] = hf["bert.embeddings.LayerNorm.bias"];
        hf.Remove("bert.embeddings.LayerNorm.weight");
        hf.Remove("bert.embeddings.LayerNorm.bias");
        hf["bert.embeddings.position_ids"] = arange(24L).unsqueeze(0);
        var path = Save(hf);

        var (model, report) = BertCheckpoint.Load(path, heads: 2);
        using (model)
        {
            model.eval();
            Assert.Equal(Small with { HasPooler = false }, model.Config);   // a mean-pooling model writes no pooler
            Assert.Empty(report.Missing);
            Assert.Empty(report.Unexpected);
            Assert.Equal(new[] { "embeddings.position_ids" }, report.Ignored);
            using var scope = NewDisposeScope();
            using var batch = new Batch(tensor(new long[] { 2, 5, 7, 3, 0, 2, 9, 3, 0, 0 }, new long[] { 2, 5 }),
                tensor(new long[] { 1, 1, 1, 1, 0, 1, 1, 1, 0, 0 }, new long[] { 2, 5 }));
            Assert.Equal(0.0, (model.forward(batch) - original.forward(batch)).abs().max().item<float>());
        }
    }

    [Fact]
    public void A_missing_tensor_is_named()
    {
        var hf = CheckpointTestFiles.BertToHuggingFace(original);
        hf.Remove("bert.encoder.layer.1.attention.self.key.weight");
        var path = Save(hf);
        var e = Assert.Throws<ArgumentException>(() => BertCheckpoint.Load(path, heads: 2));
        Assert.Contains("lacks 1 tensor", e.Message);
        Assert.Contains("layers.1.attention.key.weight", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Fact]
    public void An_unexpected_tensor_is_named()
    {
        var hf = CheckpointTestFiles.BertToHuggingFace(original);
        hf["bert.encoder.layer.0.attention.self.rotary.weight"] = zeros(4);
        var path = Save(hf);
        var e = Assert.Throws<ArgumentException>(() => BertCheckpoint.Load(path, heads: 2));
        Assert.Contains("does not know", e.Message);
        Assert.Contains("encoder.layer.0.attention.self.rotary.weight", e.Message);

        // Not strict: the same file loads and the report names the stray tensor.
        var (model, report) = BertCheckpoint.Load(path, heads: 2, strict: false);
        model.Dispose();
        Assert.Equal(new[] { "encoder.layer.0.attention.self.rotary.weight" }, report.Unexpected);
    }

    [Fact]
    public void A_shape_mismatch_names_the_tensor_and_both_shapes()
    {
        var hf = CheckpointTestFiles.BertToHuggingFace(original);
        hf["bert.encoder.layer.1.attention.self.value.weight"] = zeros(16, 8);
        var path = Save(hf);
        var e = Assert.Throws<ArgumentException>(() => BertCheckpoint.Load(path, heads: 2));
        Assert.Contains("'layers.1.attention.value.weight'", e.Message);
        Assert.Contains("[16, 8]", e.Message);
        Assert.Contains("[16, 16]", e.Message);
    }

    [Fact]
    public void A_truncated_safetensors_file_is_named()
    {
        var path = Save(CheckpointTestFiles.BertToHuggingFace(original));
        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var e = Assert.Throws<InvalidDataException>(() => BertCheckpoint.Load(path, heads: 2));
        Assert.Contains(path, e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void An_unknown_file_extension_is_refused()
    {
        var path = Path.Combine(dir, "model.bin");
        File.WriteAllBytes(path, new byte[16]);
        var e = Assert.Throws<ArgumentException>(() => BertCheckpoint.Load(path));
        Assert.Contains(".bin", e.Message);
    }

    [Fact]
    public void Heads_come_from_config_json_beside_the_file()
    {
        var path = Save(CheckpointTestFiles.BertToHuggingFace(original));
        File.WriteAllText(Path.Combine(dir, "config.json"), """{"num_attention_heads": 4, "layer_norm_eps": 1e-7}""");
        var (model, _) = BertCheckpoint.Load(path);
        using (model)
        {
            Assert.Equal(4, model.Config.Heads);
            Assert.Equal(1e-7, model.Config.LayerNormEps);
        }
    }
}
