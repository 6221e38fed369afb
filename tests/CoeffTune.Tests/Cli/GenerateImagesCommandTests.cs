using CoeffTune.Adapters;
using CoeffTune.Cli;
using CoeffTune.Diffusion;
using CoeffTune.IO;
using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Methods.Lora;
using CoeffTune.Models.Dit;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Tests.Diffusion;
using SkiaSharp;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Cli;

/// <summary>
/// <c>coefftune generate-images</c> on a tiny random diffusion transformer conditioned on the real MiniLM: the grid's
/// size, one file per image, byte-identical output for the same seed, and an adapter changing the images.
/// </summary>
[Collection(RealModelsCollection.Name)]
public sealed class GenerateImagesCommandTests(RealModelsFixture models, ITestOutputHelper output)
{
    private static readonly DitConfig Shape = new() { ImageSize = 28, PatchSize = 7, Channels = 1, Dim = 32, Depth = 1, Heads = 4, MlpDim = 64, ContextDim = 384, FrequencyDim = 32 };

    private static string TinyModel(TempDir tmp)
    {
        using var model = TinyDiffusion.Trained(seed: 5, Shape);
        var dir = Path.Combine(tmp.Path, "tiny-dit");
        DitPretraining.Write(dir, model, new PretrainedDit("", Shape, BetaSchedule.Linear, 1000, CaptionEncoder.DefaultModel, 1.0, 1.0, 0, 0));
        return dir;
    }

    private static string[] Args(string model, string outPng, params string[] more) =>
        ["generate-images", "--model", model, "--prompt", "a rotated photo of a sneaker", "--n", "5", "--steps", "4", "--out", outPng, .. more];

    [SkippableFact]
    public void Writes_a_grid_and_one_file_per_image_the_same_for_the_same_seed()
    {
        models.RequireAsset("minilm");
        using var tmp = new TempDir();
        var model = TinyModel(tmp);
        var (code, stdout, stderr) = CliRunner.Run(Args(model, tmp.File("a/grid.png"), "--seed", "7", "--out-dir", Path.Combine(tmp.Path, "a", "each")));
        Assert.True(code == 0, stderr);
        output.WriteLine(stdout);
        Assert.Contains("5 images of \"a rotated photo of a sneaker\"", stdout);

        // 5 images: 3 columns, 2 rows of 28 x 2 pixels, 2-pixel gaps.
        using (var grid = SKBitmap.Decode(tmp.File("a/grid.png")))
        {
            Assert.Equal(ImageGrid.GridSize(5, 28, 2), (grid.Width, grid.Height));
            Assert.Equal((3 * 56 + 4 * 2, 2 * 56 + 3 * 2), (grid.Width, grid.Height));
        }
        var each = Directory.GetFiles(Path.Combine(tmp.Path, "a", "each")).Order().ToArray();
        Assert.Equal(["image-000.png", "image-001.png", "image-002.png", "image-003.png", "image-004.png"], each.Select(Path.GetFileName).ToArray());
        using (var first = SKBitmap.Decode(each[0])) Assert.Equal((28, 28), (first.Width, first.Height));

        var again = CliRunner.Run(Args(model, tmp.File("b/grid.png"), "--seed", "7"));
        Assert.True(again.Code == 0, again.Err);
        Assert.Equal(File.ReadAllBytes(tmp.File("a/grid.png")), File.ReadAllBytes(tmp.File("b/grid.png")));
        var other = CliRunner.Run(Args(model, tmp.File("c/grid.png"), "--seed", "8"));
        Assert.True(other.Code == 0, other.Err);
        Assert.NotEqual(File.ReadAllBytes(tmp.File("a/grid.png")), File.ReadAllBytes(tmp.File("c/grid.png")));
    }

    [SkippableFact]
    public void An_adapter_changes_the_images_and_bad_flags_are_named()
    {
        models.RequireAsset("minilm");
        using var tmp = new TempDir();
        var model = TinyModel(tmp);
        using (var dit = DitPretraining.Load(DitPretraining.Read(model)!))
        {
            var peft = PeftModel.Wrap(dit, DiffusionTransformer.Architecture, [], new CoeffConfig(), new LoraConfig(rank: 2));
            var coeff = peft.Method<CoeffMethod>();
            for (int i = 0; i < coeff.Layers.Count; i++) coeff.SetAlpha(i, full(new long[] { 4, 4 }, 0.4));
            AdapterFile.Save(peft, Path.Combine(tmp.Path, "adapter"), model);
        }
        var plain = CliRunner.Run(Args(model, tmp.File("plain.png"), "--seed", "1"));
        var adapted = CliRunner.Run(Args(model, tmp.File("adapted.png"), "--seed", "1", "--adapter", Path.Combine(tmp.Path, "adapter")));
        Assert.True(plain.Code == 0 && adapted.Code == 0, plain.Err + adapted.Err);
        Assert.Contains("coeff+lora", adapted.Out);
        Assert.NotEqual(File.ReadAllBytes(tmp.File("plain.png")), File.ReadAllBytes(tmp.File("adapted.png")));

        var bad = CliRunner.Run(Args(model, tmp.File("bad.png"), "--steps", "0"));
        Assert.NotEqual(0, bad.Code);
        Assert.Contains("--steps", bad.Err);
        Assert.False(File.Exists(tmp.File("bad.png")));
    }
}
