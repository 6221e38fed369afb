using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CoeffTune.Adapters;
using CoeffTune.Checkpoints;
using CoeffTune.Cli.Commands;
using CoeffTune.Methods;
using CoeffTune.Methods.Coeff;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Tests.Data;
using CoeffTune.Training;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Cli;

[Collection(RealModelsCollection.Name)]
public sealed class AdapterCommandTests(RealModelsFixture models, Xunit.Abstractions.ITestOutputHelper output)
{
    private static readonly string[] Texts = ["WIN a FREE prize, click now!!!", "Can we move the meeting to Friday?", "Your account statement is ready."];

    [SkippableFact]
    public void Eval_on_a_run_folder_reproduces_the_runs_test_accuracy()
    {
        models.Require("minilm");
        var dir = TrainedRun.Dir;
        var (code, stdout, stderr) = CliRunner.Run("eval", "--adapter", dir, "--max-tokens", $"{TrainedRun.MaxTokens}", "--batch-size", $"{TrainedRun.BatchSize}", "--json");
        Assert.True(code == 0, stderr);
        using var final = JsonDocument.Parse(File.ReadLines(Path.Combine(dir, FineTune.MetricsFile)).Last());
        using var doc = JsonDocument.Parse(stdout);
        var adapted = doc.RootElement.GetProperty("adapted");
        Assert.Equal(final.RootElement.GetProperty("test_accuracy").GetDouble(), adapted.GetProperty("accuracy").GetDouble());
        Assert.Equal(final.RootElement.GetProperty("test_loss").GetDouble(), adapted.GetProperty("loss").GetDouble(), 5);
        Assert.Equal(32, doc.RootElement.GetProperty("examples").GetInt32());
        var disabled = doc.RootElement.GetProperty("adapters_disabled");
        Assert.InRange(disabled.GetProperty("accuracy").GetDouble(), 0, 1);
        // Turning coeff and lora off must change the computation (the loss), or the scope did nothing.
        Assert.NotEqual(adapted.GetProperty("loss").GetDouble(), disabled.GetProperty("loss").GetDouble());
        Assert.Contains("trained head", doc.RootElement.GetProperty("note").GetString());
    }

    /// <summary>
    /// An adapter whose head is set by hand: weights zero, biases ln 0.1, ln 0.2, ln 0.7. Whatever the text, the
    /// logits are those biases and the probabilities exactly 0.1, 0.2 and 0.7, so predict's whole path (adapter
    /// loading, label order, softmax, argmax) is checked against numbers known in advance.
    /// </summary>
    [SkippableFact]
    public void Predict_with_a_hand_set_head_gives_the_known_probabilities()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var dir = Path.Combine(tmp.Path, "adapter");
        using (var scope = NewDisposeScope())
        {
            var bert = PretrainedModels.LoadBert("minilm", classes: 3, maxLength: TrainedRun.MaxTokens).Model;
            var peft = PeftModel.Wrap(bert, "linear");
            using (no_grad())
            {
                bert.classifier.weight!.zero_();
                bert.classifier.bias!.copy_(tensor(new[] { MathF.Log(0.1f), MathF.Log(0.2f), MathF.Log(0.7f) }));
            }
            AdapterFile.Save(peft, dir, "minilm", ["low", "middle", "high"]);
        }
        var (code, stdout, stderr) = CliRunner.Run(["predict", "--adapter", dir, "--json", .. Texts]);
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        foreach (var p in doc.RootElement.GetProperty("predictions").EnumerateArray())
        {
            Assert.Equal("high", p.GetProperty("label").GetString());
            Assert.Equal(2, p.GetProperty("index").GetInt32());
            var probs = p.GetProperty("probabilities");
            // float32 softmax of logits of size ~2: about 1e-7 relative error.
            Assert.Equal(0.1, probs.GetProperty("low").GetDouble(), 6);
            Assert.Equal(0.2, probs.GetProperty("middle").GetDouble(), 6);
            Assert.Equal(0.7, probs.GetProperty("high").GetDouble(), 6);
        }
    }

    [SkippableFact]
    public void Predict_gives_probabilities_summing_to_one_and_the_argmax_label()
    {
        models.Require("minilm");
        var (code, stdout, stderr) = CliRunner.Run(["predict", "--adapter", TrainedRun.Dir, "--json", .. Texts]);
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var preds = doc.RootElement.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(Texts.Length, preds.Count);
        for (int i = 0; i < preds.Count; i++)
        {
            Assert.Equal(Texts[i], preds[i].GetProperty("input").GetString());
            var probs = preds[i].GetProperty("probabilities").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetDouble());
            Assert.Equal(["ham", "spam"], probs.Keys.ToArray());
            Assert.Equal(1.0, probs.Values.Sum(), 5);
            Assert.Equal(probs.MaxBy(p => p.Value).Key, preds[i].GetProperty("label").GetString());
        }
    }

    [SkippableFact]
    public void Merged_file_in_a_fresh_model_with_alpha_reattached_reproduces_the_adapted_logits()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var outPath = Path.Combine(tmp.Path, "merged.safetensors");
        var adapterDir = Path.Combine(TrainedRun.Dir, FineTune.AdapterFolder);
        var (code, stdout, stderr) = CliRunner.Run("merge", "--adapter", TrainedRun.Dir, "--out", outPath);
        Assert.True(code == 0, stderr);
        Assert.Contains("coeff stays a runtime operation", stdout);
        var printed = double.Parse(Regex.Match(stdout, @"max abs diff (\S+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(printed, 0, MergeCommand.Tolerance);
        var info = JsonNode.Parse(File.ReadAllText(MergeCommand.InfoPath(outPath)))!;
        Assert.Equal("coeff", info["unmerged"]![0]!.GetValue<string>());
        Assert.Equal(6, info["runtime_tensors"]!.AsArray().Count);

        // The adapted model as trained: base + adapter, nothing merged.
        var adapted = AdapterFile.Load(PretrainedModels.LoadBert("minilm", 2, maxLength: TrainedRun.MaxTokens).Model, adapterDir);
        // A fresh model given the merged weights, then alpha re-attached from the adapter.
        var fresh = PretrainedModels.LoadBert("minilm", 2, maxLength: TrainedRun.MaxTokens);
        var merged = Safetensors.LoadStateDict(outPath);
        var (missing, unexpected) = fresh.Model.load_state_dict(merged, strict: false);
        Assert.Empty(missing);
        Assert.Empty(unexpected);
        var withCoeff = PeftModel.Wrap(fresh.Model, new CoeffConfig());
        var alphas = Safetensors.LoadStateDict(Path.Combine(adapterDir, AdapterFile.WeightsName));
        var state = fresh.Model.state_dict();
        using (no_grad())
            foreach (var name in withCoeff.TrainableNames.Where(n => n.EndsWith(".alpha")))
                state[name].copy_(alphas[AdapterFile.KeyFor("bert", name)]);
        adapted.Model.eval();
        fresh.Model.eval();
        using var batch = fresh.Tokenizer.EncodeBatch(Texts);
        using (no_grad())
        {
            using var expected = adapted.Classifier.forward(batch);
            using var actual = fresh.Model.forward(batch);
            double diff = TestUtil.MaxAbsDiff(expected, actual);
            output.WriteLine($"merged file vs adapted logits: max abs diff {diff:G3}; merge command printed {printed:G3}");
            Assert.InRange(diff, 0, 1e-4);
            // And alpha matters: without it the merged model alone differs.
            using (withCoeff.DisableAdapters())
            using (var noAlpha = fresh.Model.forward(batch))
                Assert.True(TestUtil.MaxAbsDiff(expected, noAlpha) > 1e-6);
        }
    }

    [SkippableFact]
    public void Inspect_prints_the_alpha_entries_written_into_the_adapter()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var adapter = CopyAdapter(tmp.Path);
        var weights = Path.Combine(adapter, AdapterFile.WeightsName);
        var dict = Safetensors.LoadStateDict(weights);
        var key = AdapterFile.KeyFor("bert", "layers.1.attention.mixing.alpha");
        var alpha = zeros(12, 12);
        alpha[2, 5] = 0.75f; alpha[7, 1] = -0.5f; alpha[3, 3] = 0.1f; alpha[0, 11] = 0.25f;
        dict[key] = alpha;
        Safetensors.SaveStateDict(weights, dict);

        var (code, stdout, stderr) = CliRunner.Run("inspect", adapter, "--top", "3");
        Assert.True(code == 0, stderr);
        var lines = stdout.Split('\n').Select(l => l.TrimEnd()).ToList();
        int at = lines.FindIndex(l => l.StartsWith("layers.1.attention:"));
        // Residual: alpha' = I + alpha, so ||alpha' - I|| = ||alpha|| = sqrt(0.75^2 + 0.5^2 + 0.1^2 + 0.25^2).
        Assert.Equal("layers.1.attention: ||alpha' - I||_F = 0.940744", lines[at]);
        Assert.Equal("  head 2 <- head 5: +0.750000", lines[at + 1]);
        Assert.Equal("  head 7 <- head 1: -0.500000", lines[at + 2]);
        Assert.Equal("  head 0 <- head 11: +0.250000", lines[at + 3]);
        var png = File.ReadAllBytes(Path.Combine(adapter, InspectCommand.PlotFile));
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47 }, png[..4]);
    }

    [SkippableFact]
    public void Inspect_of_a_direct_parameterisation_reads_alpha_as_is()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var adapter = CopyAdapter(tmp.Path);
        var configPath = Path.Combine(adapter, AdapterFile.ConfigName);
        var config = JsonNode.Parse(File.ReadAllText(configPath))!;
        config["methods"]!["coeff"]!["parameterization"] = "direct-identity";
        File.WriteAllText(configPath, config.ToJsonString());
        var weights = Path.Combine(adapter, AdapterFile.WeightsName);
        var dict = Safetensors.LoadStateDict(weights);
        var alpha = eye(12);
        alpha[4, 9] = -0.125f; alpha[6, 6] = 2f;
        dict[AdapterFile.KeyFor("bert", "layers.0.attention.mixing.alpha")] = alpha;
        Safetensors.SaveStateDict(weights, dict);

        var (code, stdout, stderr) = CliRunner.Run("inspect", adapter, "--top", "1", "--out", Path.Combine(tmp.Path, "plots"));
        Assert.True(code == 0, stderr);
        // ||alpha' - I|| = sqrt(0.125^2 + (2 - 1)^2) = 1.007782
        Assert.Contains("layers.0.attention: ||alpha' - I||_F = 1.007782\n  head 4 <- head 9: -0.125000\n", stdout.Replace("\r", ""));
        Assert.True(File.Exists(Path.Combine(tmp.Path, "plots", InspectCommand.PlotFile)));
    }

    [SkippableFact]
    public void Inspect_of_an_adapter_without_coeff_names_its_config_file()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var adapter = CopyAdapter(tmp.Path);
        var configPath = Path.Combine(adapter, AdapterFile.ConfigName);
        var config = JsonNode.Parse(File.ReadAllText(configPath))!.AsObject();
        config["recipe"] = "lora";
        config["methods"]!.AsObject().Remove("coeff");
        File.WriteAllText(configPath, config.ToJsonString());
        var (code, _, stderr) = CliRunner.Run("inspect", adapter);
        Assert.Equal(1, code);
        Assert.Equal($"error: {configPath}: the recipe 'lora' has no coeff, so there is no mixing matrix to inspect", stderr.Trim());
    }

    [SkippableTheory]
    [InlineData("--batch-size", "eval", "--adapter", "{run}", "--batch-size", "0")]
    [InlineData("--device", "eval", "--adapter", "{run}", "--device", "toaster")]
    [InlineData("--task", "eval", "--adapter", "{adapter}")]
    [InlineData("--adapter", "eval", "--task", "spam")]
    [InlineData("/no/such/folder", "predict", "--adapter", "/no/such/folder", "hello")]
    [InlineData("--top", "predict", "--adapter", "{run}", "--top", "0", "hello")]
    [InlineData("--out", "merge", "--adapter", "{run}", "--out", "merged.bin")]
    [InlineData("--bogus", "inspect", "{run}", "--bogus")]
    [InlineData("/no/such/run", "inspect", "/no/such/run")]
    public void Bad_flags_give_one_line_errors_naming_them(string named, params string[] args)
    {
        models.Require("minilm");
        var resolved = args.Select(a => a.Replace("{run}", TrainedRun.Dir).Replace("{adapter}", Path.Combine(TrainedRun.Dir, FineTune.AdapterFolder))).ToArray();
        var (code, stdout, stderr) = CliRunner.Run(resolved);
        Assert.NotEqual(0, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith("error: ", line);
        Assert.Contains(named, line);
    }

    /// <summary>A copy of the shared run's adapter folder, free to be edited.</summary>
    private static string CopyAdapter(string into)
    {
        var src = Path.Combine(TrainedRun.Dir, FineTune.AdapterFolder);
        var dst = Path.Combine(into, "adapter");
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
        return dst;
    }
}
