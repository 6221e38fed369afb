using System.Text.Json;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Training;

namespace CoeffTune.Tests.Cli;

/// <summary>The real MiniLM learns: Coeff-Tuning with LoRA beats the frozen model's linear probe on the same spam split.</summary>
[Collection(RealModelsCollection.Name)]
public sealed class RealLearningTests(RealModelsFixture models, Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly string[] Flags =
        ["--task", "spam", "--train-size", "160", "--val-size", "32", "--test-size", "200", "--epochs", "4", "--batch-size", "16",
         "--max-tokens", "48", "--seed", "1"];

    /// <summary>
    /// The margin was fixed from one run of exactly these settings made before the assertion was written: the
    /// linear probe reached 74.0% and coeff+lora 80.5% test accuracy (200 examples). The test asks for half
    /// that gain, 3 points, so a coeff+lora that stops adapting the encoder fails and noise does not.
    /// </summary>
    [SkippableFact]
    public void Coeff_lora_on_minilm_beats_the_linear_probe_on_spam()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        double Run(string method)
        {
            var dir = Path.Combine(tmp.Path, method);
            var (code, _, err) = CliRunner.Run(["train", .. Flags, "--method", method, "--out", dir]);
            Assert.True(code == 0, err);
            using var final = JsonDocument.Parse(File.ReadLines(Path.Combine(dir, FineTune.MetricsFile)).Last());
            double accuracy = final.RootElement.GetProperty("test_accuracy").GetDouble();
            // The run's report and curves say what the metrics say.
            var report = File.ReadAllText(Path.Combine(dir, "report.md"));
            Assert.Contains($"| recipe | {method} |", report);
            Assert.Contains($"| **test accuracy** | **{accuracy * 100:F2} %** (200 examples) |", report);
            var png = File.ReadAllBytes(Path.Combine(dir, "curves.png"));
            Assert.True(png.Length > 1000 && png[1] == 'P' && png[2] == 'N' && png[3] == 'G', "curves.png is a PNG image");
            return accuracy;
        }
        double linear = Run("linear"), adapted = Run("coeff+lora");
        output.WriteLine($"linear probe {linear:P1}, coeff+lora {adapted:P1}");
        Assert.True(adapted >= linear + 0.03, $"coeff+lora {adapted:P1} is not 3 points above the linear probe {linear:P1}");
    }
}
