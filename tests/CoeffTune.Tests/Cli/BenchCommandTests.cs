using System.Text.Json;
using CoeffTune.Tests.Data;

namespace CoeffTune.Tests.Cli;

/// <summary>Every benchmark's --quick mode end to end, through the command line, on real data.</summary>
[Collection(RealDataCollection.Name)]
public sealed class BenchCommandTests(Xunit.Abstractions.ITestOutputHelper output) : IDisposable
{
    private readonly TempDir temp = new();
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(6);

    private string dir => temp.Path;

    public void Dispose() => temp.Dispose();

    private JsonElement RunBench(string name, params string[] extra)
    {
        var (code, stdout, stderr) = CliProcess.Run(Timeout, new[] { "bench", name, "--quick", "--out", dir }.Concat(extra).ToArray());
        Assert.True(code == 0, $"exit {code}: {stderr}\n{stdout}");
        Assert.True(File.Exists(Path.Combine(dir, $"{name}.md")));
        Assert.True(File.Exists(Path.Combine(dir, $"{name}.png")));
        return JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, $"{name}.json"))).RootElement;
    }

    /// <summary>Chance on each task's test set: uniform classes, except SpamAssassin's majority (ham, 68.6%).</summary>
    private static readonly Dictionary<string, double> Chance = new()
    {
        ["digits"] = 10, ["mnist-rotation"] = 25, ["spam"] = 68.6,
    };

    /// <summary>
    /// Every method learned: on each task its test accuracy is above chance by at least <paramref name="margin"/>
    /// points. The margins were fixed from one quick run of each bench made before these assertions were
    /// written (its accuracies are in the comments at each call), at about half the smallest gain over chance
    /// seen, so a method that stops learning fails and run-to-run noise does not.
    /// </summary>
    private void AssertLearned(JsonElement methods, double margin)
    {
        foreach (var m in methods.EnumerateObject())
            foreach (var t in m.Value.GetProperty("tasks").EnumerateObject())
            {
                double acc = t.Value.GetDouble(), chance = Chance[t.Name];
                output.WriteLine($"{m.Name} on {t.Name}: {acc:F2} % (chance {chance:F1} %, required {chance + margin:F1} %)");
                Assert.True(acc >= chance + margin, $"{m.Name} on {t.Name}: {acc:F2} % is not {margin} points above chance ({chance:F1} %)");
            }
    }

    [Fact]
    public void Vtab_mini_quick_counts_alpha_exactly_and_charges_its_flops()
    {
        var j = RunBench("vtab-mini", "--tasks", "digits", "mnist-rotation", "--methods", "linear", "coeff", "coeff+lora");
        var methods = j.GetProperty("methods");
        // Seen: digits 22 / 29 / 30 %, mnist-rotation 35 / 34 / 32 % (linear / coeff / coeff+lora): gains of 7 to 20 points.
        AssertLearned(methods, margin: 3);
        // 4 layers x 8 heads: 4 * 64 alphas; LoRA rank 8 on query and value (64 -> 64): 4 * 2 * 8 * 128.
        Assert.Equal(0, methods.GetProperty("linear").GetProperty("trainable").GetInt64());
        Assert.Equal(256, methods.GetProperty("coeff").GetProperty("trainable").GetInt64());
        Assert.Equal(256 + 8192, methods.GetProperty("coeff+lora").GetProperty("trainable").GetInt64());
        // Mixing costs 2 H^2 N^2 per layer: 4 * 2 * 64 * 50^2 FLOPs per example.
        double extra = methods.GetProperty("coeff").GetProperty("gflops").GetDouble() - methods.GetProperty("linear").GetProperty("gflops").GetDouble();
        Assert.Equal(4 * 2.0 * 64 * 50 * 50 / 1e9, extra, 9);
        Assert.Equal(2 * 3, j.GetProperty("runs").GetArrayLength());
    }

    [Fact]
    public void Concept_quick_trains_every_method_on_real_concept_images_and_scores_them()
    {
        // The first quick run pretrains dit-fmnist-150 and a quick judge, a few minutes on a loaded machine.
        var (code, stdout, stderr) = CliProcess.Run(TimeSpan.FromMinutes(15), "bench", "concept", "--quick", "--out", dir);
        Assert.True(code == 0, $"exit {code}: {stderr}\n{stdout}");
        var j = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "concept.json"))).RootElement;
        var methods = j.GetProperty("methods");
        Assert.Equal(new[] { "lora", "coeff+lora", "dora", "coeff+dora" }, methods.EnumerateObject().Select(m => m.Name));
        // dit-fmnist: 4 blocks, each with a self- and a cross-attention of 4 heads and width 128. LoRA rank 2 on query and
        // value: 16 linears x 2 x 2 x 128 = 8,192; alpha: 8 attentions x 4 x 4 = 128; DoRA's magnitudes: 16 x 128 = 2,048.
        Assert.Equal(8192, methods.GetProperty("lora").GetProperty("trainable").GetInt64());
        Assert.Equal(8192 + 128, methods.GetProperty("coeff+lora").GetProperty("trainable").GetInt64());
        Assert.Equal(8192 + 2048, methods.GetProperty("dora").GetProperty("trainable").GetInt64());
        Assert.Equal(8192 + 2048 + 128, methods.GetProperty("coeff+dora").GetProperty("trainable").GetInt64());
        foreach (var m in methods.EnumerateObject().Select(m => m.Value).Append(j.GetProperty("base_model")))
        {
            foreach (var metric in new[] { "fidelity", "alignment", "recognition" })
            {
                double v = m.GetProperty(metric).GetDouble();
                Assert.True(v is >= -1 and <= 1, $"{metric} {v}");
            }
            Assert.Equal(2, m.GetProperty("concepts").EnumerateObject().Count());
        }
        // Two concepts of held-out classes, 4 and 5 images, written as PNG files that train --task concept:DIR reads.
        var concepts = j.GetProperty("setup").GetProperty("concepts").EnumerateArray().ToList();
        Assert.Equal(new[] { 4, 5 }, concepts.Select(c => c.GetProperty("images").GetInt32()));
        Assert.Equal(4, Directory.GetFiles(Path.Combine(dir, "concepts", "bag-1"), "*.png").Length);
        Assert.True(File.Exists(Path.Combine(dir, "concept-coeff+lora.png")));
        Assert.True(File.Exists(Path.Combine(dir, "runs", "bag-2", "coeff+dora", "seed0", "adapter", "adapter_config.json")));
        Assert.Equal(64, j.GetProperty("sample_quality").GetProperty("images").GetInt32());

        // A second run reads every finished run back instead of training again, and reports the same numbers.
        var first = methods.GetRawText();
        var oneResult = Path.Combine(dir, "runs", "bag-1", "lora", "seed0", "result.json");
        var written = File.GetLastWriteTimeUtc(oneResult);
        var again = CliProcess.Run(Timeout, "bench", "concept", "--quick", "--out", dir);
        Assert.True(again.Code == 0, again.Err);
        Assert.DoesNotContain("[1/8]", again.Out);
        Assert.Equal(written, File.GetLastWriteTimeUtc(oneResult));
        Assert.Equal(first, JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "concept.json"))).RootElement.GetProperty("methods").GetRawText());
    }

    [Fact]
    public void Text_quick_runs_minilm_with_dora()
    {
        var j = RunBench("text", "--tasks", "spam", "--methods", "linear", "coeff+dora");
        var methods = j.GetProperty("methods");
        // Seen: linear 74 %, coeff+dora 83 % against a majority of 68.6 %: gains of 5.4 and 14.4 points.
        AssertLearned(methods, margin: 2.5);
        // MiniLM: 6 layers x 12 heads; DoRA rank 8 on query and value (384 -> 384) with a magnitude per output.
        Assert.Equal(6 * 144 + 6 * 2 * (8 * 768 + 384), methods.GetProperty("coeff+dora").GetProperty("trainable").GetInt64());
    }

    [Fact]
    public void Ablation_quick_runs_the_parameterisations_and_dropouts()
    {
        var j = RunBench("ablation", "--tasks", "digits", "--methods", "direct, random init", "coeff+lora p=0.4");
        Assert.Equal(2, j.GetProperty("methods").EnumerateObject().Count());
        // Seen: direct random init 27 %, coeff+lora p=0.4 28 % on digits: gains of 17 and 18 points.
        AssertLearned(j.GetProperty("methods"), margin: 8);
    }

    [Fact]
    public void Cost_quick_reports_a_ratio_for_every_method_with_coeff()
    {
        var (code, stdout, stderr) = CliProcess.Run(Timeout, "bench", "cost", "--quick", "--out", dir);
        Assert.True(code == 0, $"exit {code}: {stderr}\n{stdout}");
        var j = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "cost.json"))).RootElement;
        var ratios = j.GetProperty("ratios").EnumerateArray().ToList();
        // Two models x (linear, lora, ssf, fact, snell, adapter, vpt, full; lora and full storing the maps; lora with whole maps).
        Assert.Equal(2 * 11, ratios.Count);
        // Times are measurements that a busy machine moves freely (the bench reports them; no test bounds them):
        // here only that each ratio was measured. FLOPs are counted, so their ratio is asserted.
        Assert.All(ratios, r => Assert.True(double.IsFinite(r.GetProperty("time_ratio").GetDouble()) && r.GetProperty("time_ratio").GetDouble() > 0));
        Assert.All(ratios, r => Assert.True(r.GetProperty("flops_ratio").GetDouble() > 1.0));
        Assert.True(j.GetProperty("matmul_peak_gflops").GetDouble() > 0.1);
    }

    [Fact]
    public void A_bench_flag_naming_no_task_is_a_one_line_error()
    {
        var (code, _, stderr) = CliProcess.Run(Timeout, "bench", "vtab-mini", "--quick", "--out", dir, "--tasks", "cifar");
        Assert.Equal(1, code);
        Assert.Equal("error: --tasks: 'cifar' is not a task of this bench (mnist, digits, mnist-rotation, fashion-coarse)", stderr.Trim());
    }

    [Fact]
    public void A_cost_recipe_without_its_base_recipe_is_a_one_line_error()
    {
        var (code, _, stderr) = CliProcess.Run(Timeout, "bench", "cost", "--quick", "--out", dir, "--recipes", "coeff+lora");
        Assert.Equal(1, code);
        Assert.Equal("error: --recipes: 'coeff+lora' is compared with 'lora', which is not in the list", stderr.Trim());
    }
}
