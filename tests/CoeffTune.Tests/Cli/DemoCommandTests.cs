using System.Text.Json;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Training;

namespace CoeffTune.Tests.Cli;

/// <summary>The README's main job, <c>coefftune demo</c>, at a small budget: both runs, their reports, and the table it prints.</summary>
[Collection(RealModelsCollection.Name)]
public sealed class DemoCommandTests(RealModelsFixture models)
{
    [SkippableFact]
    public void Demo_trains_both_recipes_on_one_split_and_prints_their_test_accuracies()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var (code, stdout, stderr) = CliRunner.Run("demo", "--train-size", "48", "--epochs", "1", "--out", tmp.Path);
        Assert.True(code == 0, stderr);
        foreach (var recipe in new[] { "linear", "coeff+lora" })
        {
            var run = Path.Combine(tmp.Path, recipe);
            using var final = JsonDocument.Parse(File.ReadLines(Path.Combine(run, FineTune.MetricsFile)).Last());
            double accuracy = final.RootElement.GetProperty("test_accuracy").GetDouble();
            Assert.Equal(recipe, final.RootElement.GetProperty("recipe").GetString());
            // The printed table shows each run's own test accuracy.
            Assert.Contains($"{accuracy:P2}", stdout);
            Assert.True(File.Exists(Path.Combine(run, "report.md")) && File.Exists(Path.Combine(run, "curves.png")));
        }
        // Both runs use one split: the same seed, sizes and task give the same split file.
        Assert.Equal(File.ReadAllText(Path.Combine(tmp.Path, "linear", FineTune.SplitFile)), File.ReadAllText(Path.Combine(tmp.Path, "coeff+lora", FineTune.SplitFile)));
        Assert.Contains("the adapter (", stdout);
    }
}
