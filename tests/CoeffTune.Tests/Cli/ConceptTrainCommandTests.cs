using CoeffTune.Adapters;
using CoeffTune.Diffusion;
using CoeffTune.Models.Dit;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Tests.Diffusion;
using SkiaSharp;
using TorchSharp;

namespace CoeffTune.Tests.Cli;

/// <summary>
/// <c>coefftune train --task concept:DIR</c> on a tiny random text-to-image model conditioned on the real MiniLM: a
/// coeff+lora adapter learnt from four images, whose alpha and LoRA factors moved, and which changes generated images.
/// </summary>
[Collection(RealModelsCollection.Name)]
public sealed class ConceptTrainCommandTests(RealModelsFixture models)
{
    private static readonly DitConfig Shape = new() { ImageSize = 28, PatchSize = 7, Channels = 1, Dim = 32, Depth = 1, Heads = 4, MlpDim = 64, ContextDim = 384, FrequencyDim = 32 };

    private static void Png(string path, int seed)
    {
        var g = new Random(seed);
        using var bitmap = new SKBitmap(28, 28, SKColorType.Rgba8888, SKAlphaType.Opaque);
        for (int y = 0; y < 28; y++)
            for (int x = 0; x < 28; x++)
            {
                // A bright ring with a little noise: the same concept in every image.
                double r = Math.Sqrt((x - 13.5) * (x - 13.5) + (y - 13.5) * (y - 13.5));
                byte v = (byte)Math.Clamp((Math.Abs(r - 8) < 2.5 ? 230 : 20) + g.Next(-15, 16), 0, 255);
                bitmap.SetPixel(x, y, new SKColor(v, v, v));
            }
        using var data = bitmap.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, data.ToArray());
    }

    [SkippableFact]
    public void Concept_training_writes_an_adapter_that_changes_generated_images()
    {
        models.RequireAsset("minilm");
        using var tmp = new TempDir();
        var modelDir = Path.Combine(tmp.Path, "tiny-dit");
        using (var model = TinyDiffusion.Trained(seed: 8, Shape))
            DitPretraining.Write(modelDir, model, new PretrainedDit("", Shape, BetaSchedule.Linear, 1000, CaptionEncoder.DefaultModel, 1, 1, 0, 0));
        var concept = Path.Combine(tmp.Path, "ring");
        Directory.CreateDirectory(concept);
        for (int i = 0; i < 4; i++) Png(Path.Combine(concept, $"{i}.png"), i);
        File.WriteAllText(Path.Combine(concept, "notes.txt"), "not an image");

        var run = Path.Combine(tmp.Path, "run");
        var (code, stdout, stderr) = CliRunner.Run("train", "--model", modelDir, "--task", "concept:" + concept, "--method", "coeff+lora",
            "--lora-r", "2", "--max-steps", "6", "--lr", "0.01", "--out", run, "--token", "zwx", "--medium", "image");
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("coeff+lora on concept 'zwx'", stdout);
        Assert.Contains("\"an image of zwx\"", stdout);
        var adapter = Path.Combine(run, ConceptTuning.AdapterFolder);
        var info = AdapterFile.ReadInfo(adapter);
        Assert.Equal("coeff+lora", info.Recipe);
        var tensors = AdapterFile.ReadTensors(adapter, info);
        var alphas = tensors.Where(t => t.Key.EndsWith(".mixing.alpha")).ToList();
        Assert.Equal(2, alphas.Count);                                      // one block: self- and cross-attention
        Assert.All(alphas, a => Assert.True(a.Value.abs().sum().ToDouble() > 0, $"{a.Key} did not move"));
        Assert.Contains(tensors.Keys, k => k.EndsWith("cross_attn.query.lora_B.weight"));

        string[] Generate(string png, params string[] more) =>
            ["generate-images", "--model", modelDir, "--prompt", "an image of zwx", "--n", "2", "--steps", "3", "--seed", "2", "--out", png, .. more];
        var plain = CliRunner.Run(Generate(Path.Combine(tmp.Path, "plain.png")));
        var adapted = CliRunner.Run(Generate(Path.Combine(tmp.Path, "adapted.png"), "--adapter", adapter));
        Assert.True(plain.Code == 0 && adapted.Code == 0, plain.Err + adapted.Err);
        Assert.NotEqual(File.ReadAllBytes(Path.Combine(tmp.Path, "plain.png")), File.ReadAllBytes(Path.Combine(tmp.Path, "adapted.png")));
    }

    [Fact]
    public void The_token_flag_is_checked_and_belongs_to_concept_tasks()
    {
        var (code, _, stderr) = CliRunner.Run("train", "--task", "mnist", "--token", "zwx", "--out", "unused");
        Assert.NotEqual(0, code);
        Assert.Contains("--token applies to concept:DIR tasks only", stderr);
        using var tmp = new TempDir();
        (code, _, stderr) = CliRunner.Run("train", "--model", "dit-fmnist-1", "--task", "concept:" + tmp.Path, "--token", "two words", "--out", tmp.Path);
        Assert.NotEqual(0, code);
        Assert.Contains("--token", stderr);
    }

    [Fact]
    public void A_concept_folder_without_images_is_refused_naming_it()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<InvalidDataException>(() => ConceptTuning.ReadImages(tmp.Path, Shape));
        Assert.Contains("0 PNG/JPEG images", e.Message);
        Assert.Equal("a photo of sks", new ConceptOptions().Caption);
        Assert.Equal("an image of sks", new ConceptOptions { Medium = "image" }.Caption);
        Assert.Throws<ArgumentException>(() => new ConceptOptions { Token = "two words" }.Validate());
    }
}
