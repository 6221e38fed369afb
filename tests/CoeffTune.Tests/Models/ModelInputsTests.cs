using CoeffTune.Data;
using CoeffTune.Models;
using CoeffTune.Tests.Data;
using SkiaSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Models;

/// <summary>Each family's preprocessing and the family registry that hands it out.</summary>
public sealed class ModelInputsTests
{
    [Fact]
    public void Image_files_become_one_batch_at_the_models_size_and_channels()
    {
        using var tmp = new TempDir();
        var white = TempDir.WritePng(Path.Combine(tmp.Path, "white.png"), 16, 16, SKColors.White);
        var red = TempDir.WritePng(Path.Combine(tmp.Path, "red.png"), 3, 5, new SKColor(255, 0, 0));
        var vit = TinyModels.Vit();   // 1 x 8 x 8 input
        using var batch = new VitInputs(vit.Config).Encode([white, red], CPU);
        Assert.Equal(new long[] { 2, 1, 8, 8 }, batch.Inputs.shape);
        var v = TestUtil.Values(batch.Inputs);
        Assert.All(v[..64], x => Assert.Equal(1.0, x, 5));
        // Grey from red: the ITU-R 601 luma weight of R.
        Assert.All(v[64..], x => Assert.Equal(0.299, x, 3));
        using var logits = vit.forward(batch);
        Assert.Equal(new long[] { 2, 3 }, logits.shape);
    }

    [Fact]
    public void A_missing_image_file_is_named()
    {
        var e = Assert.Throws<FileNotFoundException>(() => new VitInputs(TinyModels.Vit().Config).Encode(["/no/such/cat.png"], CPU));
        Assert.StartsWith("/no/such/cat.png: image file not found", e.Message);
    }

    [Fact]
    public void Image_probes_are_the_same_on_every_call_and_have_the_models_shape()
    {
        var inputs = new VitInputs(TinyModels.Vit().Config);
        using var a = inputs.Probe(CPU);
        using var b = inputs.Probe(CPU);
        Assert.Equal(new long[] { 4, 1, 8, 8 }, a.Inputs.shape);
        Assert.Equal(TestUtil.Values(a.Inputs), TestUtil.Values(b.Inputs));
    }

    [Fact]
    public void A_task_of_another_shape_or_kind_is_refused_with_both_shapes()
    {
        var inputs = new VitInputs(TinyModels.Vit().Config);   // 1 x 8 x 8
        var images = new ImageDataset(new float[2 * 3 * 16 * 16], new[] { 0, 1 }, new[] { "a", "b" }, 3, 16, 16, "big");
        var e = Assert.Throws<ArgumentException>(() => inputs.Check(new TaskData("big", images, images)));
        Assert.Equal("task big: images are 3x16x16, the model takes 1x8x8", e.Message);
        var texts = new TextDataset(new[] { "x", "y" }, new[] { 0, 1 }, new[] { "a", "b" }, "words");
        Assert.Equal("task words: a text task; an image model reads images", Assert.Throws<ArgumentException>(() => inputs.Source(texts)).Message);
    }

    [Fact]
    public void Every_family_with_a_classifier_names_the_head_its_model_has()
    {
        Assert.Equal(TinyModels.Bert().HeadName, ModelFamilies.Get("bert").HeadModule);
        Assert.Equal(TinyModels.Vit().HeadName, ModelFamilies.Get("vit").HeadModule);
        Assert.Equal("bert", ModelFamilies.ForTask(TaskKind.Text).Name);
        Assert.Equal("vit", ModelFamilies.ForTask(TaskKind.Image).Name);
    }

    [Fact]
    public void An_unknown_architecture_names_the_known_ones()
    {
        var e = Assert.Throws<ArgumentException>(() => ModelFamilies.Get("gpt"));
        Assert.StartsWith("unknown architecture 'gpt' (bert, vit", e.Message);
    }
}
