using CoeffTune.Assets;
using CoeffTune.Training;

namespace CoeffTune.Tests.Cli;

/// <summary>The library's errors name its own settings; the command line says which flag sets them.</summary>
public class FlagMessageTests
{
    [Theory]
    [InlineData("--epochs", "0", "error: --epochs must be at least 1, got 0")]
    [InlineData("--lr", "0", "error: --lr must be positive, got 0")]
    [InlineData("--weight-decay", "-0.5", "error: --weight-decay must be non-negative, got -0.5")]
    [InlineData("--batch-size", "0", "error: --batch-size must be at least 1, got 0")]
    [InlineData("--max-steps", "0", "error: --max-steps must be at least 1, got 0")]
    public void A_bad_training_value_is_refused_naming_its_flag(string flag, string value, string expected)
    {
        var (code, _, err) = CliRunner.Run("train", "--task", "spam", flag, value, "--out", Path.Combine(Path.GetTempPath(), "coefftune-never-" + Guid.NewGuid().ToString("N")));
        Assert.Equal(1, code);
        Assert.Equal(expected, err.Trim());
    }

    [Fact]
    public void The_library_names_the_setting_not_a_flag()
    {
        var e = Assert.Throws<ArgumentException>(() => new TrainOptions { LearningRate = 0 }.Validate());
        Assert.Equal(nameof(TrainOptions.LearningRate), e.ParamName);
        Assert.StartsWith("TrainOptions.LearningRate must be positive, got 0", e.Message);
        Assert.DoesNotContain("--", e.Message);
    }

    [Fact]
    public void A_message_about_a_setting_gets_the_flag_in_its_place_or_in_front()
    {
        Assert.Equal("--lr must be positive, got 0", CoeffTune.Cli.Cli.FlagMessage("TrainOptions.LearningRate must be positive, got 0", "LearningRate", "--lr"));
        Assert.Equal("--model 'x' takes 1x28x28 images", CoeffTune.Cli.Cli.FlagMessage("model 'x' takes 1x28x28 images", "model", "--model"));
        Assert.Equal("--tasks: 'cifar' is not a task of this bench", CoeffTune.Cli.Cli.FlagMessage("'cifar' is not a task of this bench", "tasks", "--tasks"));
        // A setting whose name only ends like the parameter's is not taken for it.
        Assert.Equal("--lr: TrainOptions.BaseLearningRate is wrong", CoeffTune.Cli.Cli.FlagMessage("TrainOptions.BaseLearningRate is wrong", "LearningRate", "--lr"));
    }

    [Fact]
    public void A_damaged_asset_is_reported_with_the_fetch_command_that_replaces_it()
    {
        var e = new DamagedAssetException("minilm", "/cache/minilm", "/cache/minilm/model.onnx has SHA-256 aa, expected bb");
        Assert.Equal("minilm: the cached copy is damaged (/cache/minilm/model.onnx has SHA-256 aa, expected bb); delete /cache/minilm and fetch it again", e.Message);
        Assert.Equal("minilm: the cached copy is damaged (/cache/minilm/model.onnx has SHA-256 aa, expected bb); fetch it again with 'coefftune fetch minilm --force'",
            CoeffTune.Cli.Cli.Message(e));
    }
}
