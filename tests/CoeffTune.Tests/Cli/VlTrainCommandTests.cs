using System.Text.Json;
using CoeffTune.Tests.Data;

namespace CoeffTune.Tests.Cli;

/// <summary><c>train --task vl-mini</c>: VL-BART fine-tuned from the command line on the four image-to-text tasks.</summary>
[Collection(RealDataCollection.Name)]
public sealed class VlTrainCommandTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly TempDir temp = new();

    public void Dispose() => temp.Dispose();

    [Fact]
    public void Train_on_vl_mini_scores_each_task_on_held_out_images_and_writes_the_adapter()
    {
        var run = Path.Combine(temp.Path, "run");
        var (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(8), "train", "--model", "bart-brown-quick", "--task", "vl-mini",
            "--vision", "vit-fmnist-4000x2", "--method", "coeff+lora", "--train-size", "8", "--val-size", "2", "--test-size", "3",
            "--epochs", "2", "--batch-size", "8", "--out", run);
        output.WriteLine(stdout);
        Assert.True(code == 0, $"exit {code}: {stderr}\n{stdout}");
        Assert.Contains("test (3 examples per task, held-out images): vqa", stdout);
        // Progress reports the tasks' mean score (0-100), not an accuracy percentage.
        Assert.Contains("validation mean score", stdout + stderr);
        Assert.DoesNotContain("validation accuracy", stdout + stderr);
        var result = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "result.json"))).RootElement;
        var test = result.GetProperty("test");
        Assert.Equal(["vqa", "gqa", "nlvr2", "caption"], test.EnumerateObject().Select(t => t.Name));
        foreach (var t in test.EnumerateObject()) Assert.InRange(t.Value.GetDouble(), 0, 100);
        Assert.Equal(test.EnumerateObject().Average(t => t.Value.GetDouble()), result.GetProperty("test_mean").GetDouble(), 9);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length);
        // Three test examples per task, and the first five answers of each task are kept (here all three).
        var samples = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "samples.json"))).RootElement;
        Assert.Equal(12, samples.GetArrayLength());
        // The quick BART's 2 + 2 layers of 4 heads: 6 attention layers (encoder self, decoder self, decoder cross) of 4 x 4 alphas.
        var config = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "adapter", "adapter_config.json"))).RootElement;
        output.WriteLine(config.ToString());
        Assert.True(File.Exists(Path.Combine(run, "adapter", "adapter_model.safetensors")));
        var alphas = CoeffTune.IO.SafetensorsFile.Validate(Path.Combine(run, "adapter", "adapter_model.safetensors"))
            .Where(kv => kv.Key.Contains(".mixing.", StringComparison.Ordinal)).Sum(kv => kv.Value.Aggregate(1L, (a, b) => a * b));
        Assert.Equal(6 * 16, alphas);
    }

    [Fact]
    public void Vl_mini_needs_a_bart_model_and_says_so()
    {
        var (code, _, stderr) = CliProcess.Run(TimeSpan.FromMinutes(1), "train", "--model", "minilm", "--task", "vl-mini", "--out", Path.Combine(temp.Path, "x"));
        Assert.Equal(1, code);
        Assert.Contains("--task vl-mini trains VL-BART: --model must be a BART folder or bart-brown, not minilm", stderr);
    }
}
