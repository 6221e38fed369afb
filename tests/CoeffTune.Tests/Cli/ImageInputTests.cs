using CoeffTune.Cli;
using CoeffTune.Methods;
using CoeffTune.Tests.Data;
using SkiaSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Cli;

public sealed class ImageInputTests
{
    [Fact]
    public void Image_files_become_one_batch_at_the_models_size_and_channels()
    {
        using var tmp = new TempDir();
        var white = TempDir.WritePng(Path.Combine(tmp.Path, "white.png"), 16, 16, SKColors.White);
        var red = TempDir.WritePng(Path.Combine(tmp.Path, "red.png"), 3, 5, new SKColor(255, 0, 0));
        var vit = TinyModels.Vit();   // 1 x 8 x 8 input
        var m = new AdaptedModel { Peft = PeftModel.Wrap(vit, "coeff"), BaseName = "tiny", BaseKeys = new HashSet<string>() };
        using var batch = m.Encode([white, red], CPU);
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
        var m = new AdaptedModel { Peft = PeftModel.Wrap(TinyModels.Vit(), "coeff"), BaseName = "tiny", BaseKeys = new HashSet<string>() };
        var e = Assert.Throws<FileNotFoundException>(() => m.Encode(["/no/such/cat.png"], CPU));
        Assert.StartsWith("/no/such/cat.png: image file not found", e.Message);
    }

}
