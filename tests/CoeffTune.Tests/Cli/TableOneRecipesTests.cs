using System.Text.Json;
using CoeffTune.Models;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Training;
using TorchSharp.PyBridge;

namespace CoeffTune.Tests.Cli;

/// <summary>
/// The paper's pairings through the command line: a small ViT written as a Hugging Face checkpoint trains on digits with
/// each new recipe and its own flags, and <c>eval</c> of the saved adapter reproduces the run's test accuracy.
/// </summary>
public sealed class TableOneRecipesTests
{
    private static readonly VitConfig Shape = new()
    { ImageSize = 28, PatchSize = 7, Channels = 1, Dim = 32, Depth = 2, Heads = 4, MlpDim = 64, Classes = 10, LayerNormEps = 1e-6 };

    [Theory]
    [InlineData("coeff+fact", "--fact-rank", "4", "--fact-scale", "10", "fact", "r", 4.0)]
    [InlineData("coeff+snell", "--snell-rank", "4", "--snell-sparsity", "0.5", "snell", "sparsity", 0.5)]
    [InlineData("coeff+adapter", "--adapter-size", "6", "--adapter-lr", "0.002", "adapter", "size", 6.0)]
    [InlineData("coeff+vpt", "--vpt-tokens", "3", "--vpt-lr", "0.002", "vpt", "tokens", 3.0)]
    public void A_recipe_trains_with_its_flags_and_its_adapter_evaluates_to_the_runs_accuracy(string recipe, string flag1, string value1,
        string flag2, string value2, string method, string key, double expected)
    {
        using var tmp = new TempDir();
        var basePath = tmp.File("vit/model.safetensors");
        using (var original = new VisionTransformer(Shape))
        {
            CheckpointTestFiles.Randomize(original, seed: 4);
            Safetensors.SaveStateDict(basePath, CheckpointTestFiles.VitToHuggingFace(original));
        }
        tmp.File("vit/config.json", """{"num_attention_heads": 4, "layer_norm_eps": 1e-6}""");
        var run = Path.Combine(tmp.Path, "run");
        var (code, stdout, stderr) = CliRunner.Run("train", "--model", basePath, "--task", "digits", "--method", recipe, flag1, value1, flag2, value2,
            "--train-size", "32", "--val-size", "16", "--test-size", "32", "--epochs", "1", "--batch-size", "16", "--out", run);
        Assert.True(code == 0, stderr);
        Assert.Contains(method, stdout);

        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, FineTune.AdapterFolder, CoeffTune.Adapters.AdapterFile.ConfigName))).RootElement;
        Assert.Equal(recipe, config.GetProperty("recipe").GetString());
        Assert.Equal(expected, config.GetProperty("methods").GetProperty(method).GetProperty(key).GetDouble());

        using var final = JsonDocument.Parse(File.ReadLines(Path.Combine(run, FineTune.MetricsFile)).Last());
        var (evalCode, evalOut, evalErr) = CliRunner.Run("eval", "--adapter", run, "--json");
        Assert.True(evalCode == 0, evalErr);
        using var doc = JsonDocument.Parse(evalOut);
        Assert.Equal(final.RootElement.GetProperty("test_accuracy").GetDouble(), doc.RootElement.GetProperty("adapted").GetProperty("accuracy").GetDouble());
        Assert.Equal(final.RootElement.GetProperty("test_loss").GetDouble(), doc.RootElement.GetProperty("adapted").GetProperty("loss").GetDouble(), 5);
    }
}
