using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Adapters;
using CoeffTune.Checkpoints;
using CoeffTune.Export;
using CoeffTune.Models;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Text;
using CoeffTune.Training;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using TorchSharp;
using TorchSharp.PyBridge;
using Xunit.Abstractions;
using static TorchSharp.torch;
using Tensor = TorchSharp.torch.Tensor;

namespace CoeffTune.Tests.Cli;

/// <summary>
/// <c>coefftune export</c> on the real MiniLM with a coeff+lora adapter: the file ONNX Runtime runs, fed ids from
/// the shipped tokenizer.json by Hugging Face's tokenizers library (as the README's example does), gives the
/// logits <c>predict --json</c> prints.
/// </summary>
[Collection(RealModelsCollection.Name)]
public sealed class ExportCommandTests(RealModelsFixture models, ITestOutputHelper output)
{
    /// <summary>Of different lengths, so the batch has padding; all under the run's 32 tokens.</summary>
    private static readonly string[] Texts =
    [
        "WIN a FREE prize, click now!!!",
        "Can we move the meeting to Friday afternoon instead?",
        "Hi",
        "Your account statement for March is ready to view online.",
    ];

    [SkippableTheory]
    [InlineData("trained")]
    [InlineData("hand-set")]
    public void Onnx_runtime_on_the_exported_file_matches_predict_json(string adapter)
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        // "trained": the shared run as trained (briefly). "hand-set": its adapter with large random alpha and
        // lora_B, so that the mixing and the merged LoRA move the logits far beyond the tolerance.
        var source = adapter == "trained" ? TrainedRun.Dir : HandSetAdapter(tmp.Path);
        var outPath = Path.Combine(tmp.Path, "export", "spam.onnx");
        var (code, stdout, stderr) = CliRunner.Run("export", "--adapter", source, "--out", outPath);
        Assert.True(code == 0, stderr);
        Assert.Contains("merged lora", stdout);
        var folder = Path.GetDirectoryName(outPath)!;
        Assert.True(File.Exists(Path.Combine(folder, TokenizerFiles.TokenizerJson)));
        Assert.True(File.Exists(Path.Combine(folder, TokenizerFiles.ConfigJson)));
        Assert.Empty(Directory.GetFiles(folder, "*.tmp"));

        var expected = PredictLogits(source);
        using var session = new InferenceSession(outPath);
        var actual = ReadmeStyleLogits(session, Path.Combine(folder, TokenizerFiles.TokenizerJson), Texts);
        double worst = 0;
        for (int i = 0; i < Texts.Length; i++)
            for (int c = 0; c < 2; c++) worst = Math.Max(worst, Math.Abs(expected[i][c] - actual[i][c]));
        output.WriteLine($"MiniLM coeff+lora ({adapter}): max |ONNX Runtime - predict --json| logits {worst:E2}; {new FileInfo(outPath).Length:N0} bytes");
        Assert.True(worst <= 1e-4, $"logits differ by {worst:E2}");

        var meta = session.ModelMetadata.CustomMetadataMap;
        var info = AdapterFile.ReadInfo(Path.Combine(TrainedRun.Dir, FineTune.AdapterFolder));
        Assert.Equal(["ham", "spam"], JsonSerializer.Deserialize<string[]>(meta[OnnxExporter.MetadataKeys.Labels]));
        Assert.Equal("coeff+lora", meta[OnnxExporter.MetadataKeys.Recipe]);
        Assert.Equal(info.BaseIdentity, meta[OnnxExporter.MetadataKeys.BaseModelIdentity]);
        Assert.Equal("minilm", meta[OnnxExporter.MetadataKeys.BaseModel]);
        if (adapter == "hand-set")
        {
            // The hand-set adapter really changes the computation: its logits are far from the trained run's.
            var trained = PredictLogits(TrainedRun.Dir);
            double moved = Enumerable.Range(0, Texts.Length).Max(i => Math.Abs(trained[i][0] - expected[i][0]));
            Assert.True(moved > 0.05, $"the hand-set adapter moves the logits by only {moved:E2}");
        }
    }

    [SkippableFact]
    public void Shipped_tokenizer_cuts_long_texts_as_the_library_does()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var outPath = Path.Combine(tmp.Path, "model.onnx");
        var (code, _, stderr) = CliRunner.Run("export", "--adapter", TrainedRun.Dir, "--out", outPath, "--max-tokens", "24");
        Assert.True(code == 0, stderr);
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(tmp.Path, TokenizerFiles.ConfigJson)))!;
        Assert.Equal(24, config["model_max_length"]!.GetValue<int>());
        using var session = new InferenceSession(outPath);
        Assert.Equal("24", session.ModelMetadata.CustomMetadataMap[OnnxExporter.MetadataKeys.MaxTokens]);

        var text = string.Join(" ", Enumerable.Repeat("The committee postponed its unanimous decision indefinitely.", 8));
        using var library = PretrainedModels.LoadTokenizer("minilm", maxLength: 24);
        using var shipped = new Tokenizers.DotNet.Tokenizer(vocabPath: Path.Combine(tmp.Path, TokenizerFiles.TokenizerJson));
        var ids = shipped.Encode(text).Select(i => (int)i).ToArray();
        Assert.Equal(24, ids.Length);
        Assert.Equal(library.Encode(text), ids);
        // The library reads the exported folder back as a model folder, with the exported limit.
        using var reread = TextTokenizer.FromFolder(tmp.Path);
        Assert.Equal(24, reread.ModelMaxLength);
        Assert.Equal(library.Encode(Texts[1]), reread.Encode(Texts[1]));
    }

    [SkippableFact]
    public void Embeddings_export_gives_the_adapted_encoders_normalised_mean_pool()
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var outPath = Path.Combine(tmp.Path, "embed.onnx");
        var source = HandSetAdapter(tmp.Path);
        var (code, stdout, stderr) = CliRunner.Run("export", "--adapter", source, "--out", outPath, "--embeddings");
        Assert.True(code == 0, stderr);
        Assert.Contains($"output {OnnxExporter.SentenceEmbeddingName} [batch, 384]", stdout);

        var loaded = PretrainedModels.LoadBert("minilm", 2);
        var peft = AdapterFile.Load(loaded.Model, source);
        loaded.Model.eval();
        using var scope = NewDisposeScope();
        using var batch = loaded.Tokenizer.EncodeBatch(Texts);
        Tensor expected;
        using (no_grad())
            expected = nn.functional.normalize(BertClassifier.MeanPool(loaded.Model.Encode(batch.Inputs, batch.AttentionMask, batch.TokenTypeIds), batch.AttentionMask), p: 2, dim: 1);
        using var session = new InferenceSession(outPath);
        var actual = CoeffTune.Tests.Export.OnnxRuntimeRun.Run(session, batch, OnnxExporter.SentenceEmbeddingName);
        double diff = TestUtil.MaxAbsDiff(expected, actual);
        output.WriteLine($"MiniLM coeff+lora (hand-set) sentence embedding: max |ONNX Runtime - CoeffTune| {diff:E2}");
        Assert.True(diff <= 1e-4, $"embeddings differ by {diff:E2}");
    }

    public static TheoryData<string, string> BadInputs => new()
    {
        { "mismatched model", "trained on base model" },
        { "alpha of the wrong shape", "has shape [6, 6], the model expects [12, 12]" },
        { "missing lora tensor", "missing tensors" },
        { "out under a file", "--out" },
        { "out in /proc", "--out" },
        { "out not .onnx", "--out" },
    };

    [SkippableTheory]
    [MemberData(nameof(BadInputs))]
    public void Bad_adapters_and_unwritable_outputs_give_one_line_errors_and_leave_no_file(string bad, string named)
    {
        models.Require("minilm");
        using var tmp = new TempDir();
        var adapter = CopyAdapter(tmp.Path);
        var weights = Path.Combine(adapter, AdapterFile.WeightsName);
        var outDir = Path.Combine(tmp.Path, "out");
        var outPath = Path.Combine(outDir, "model.onnx");
        var args = new List<string> { "export", "--adapter", adapter };
        switch (bad)
        {
            case "mismatched model":
                args.AddRange(["--model", "arctic-xs"]);
                break;
            case "alpha of the wrong shape":
                EditWeights(weights, d => d[AdapterFile.KeyFor("bert", "layers.0.attention.mixing.alpha")] = zeros(6, 6));
                break;
            case "missing lora tensor":
                EditWeights(weights, d => d.Remove(AdapterFile.KeyFor("bert", "layers.3.attention.value.lora_B.weight")));
                break;
            case "out under a file":
                File.WriteAllText(Path.Combine(tmp.Path, "plain.txt"), "not a folder");
                outDir = Path.Combine(tmp.Path, "plain.txt");
                outPath = Path.Combine(outDir, "model.onnx");
                break;
            case "out in /proc":
                outDir = "/proc/coefftune-export-test";
                outPath = Path.Combine(outDir, "model.onnx");
                break;
            case "out not .onnx":
                outPath = Path.Combine(outDir, "model.bin");
                break;
        }
        args.AddRange(["--out", outPath]);
        var before = Directory.GetFiles(tmp.Path, "*", SearchOption.AllDirectories).ToHashSet();
        var (code, stdout, stderr) = CliRunner.Run(args.ToArray());
        Assert.Equal(1, code);
        Assert.Equal("", stdout);
        var line = Assert.Single(stderr.Trim().Split('\n'));
        output.WriteLine(line);
        Assert.StartsWith("error: ", line);
        Assert.Contains(named, line);
        Assert.False(File.Exists(outPath));
        Assert.Equal(before, Directory.GetFiles(tmp.Path, "*", SearchOption.AllDirectories).ToHashSet());
    }

    /// <summary>The logits predict --json prints, per text.</summary>
    private static double[][] PredictLogits(string adapter)
    {
        var (code, stdout, stderr) = CliRunner.Run(["predict", "--adapter", adapter, "--json", .. Texts]);
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        return doc.RootElement.GetProperty("predictions").EnumerateArray()
            .Select(p => p.GetProperty("logits").EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();
    }

    /// <summary>
    /// The README's example, for a padded batch: ids from the shipped tokenizer.json by Tokenizers.DotNet,
    /// padded with 0 under a zero attention mask, token types 0, and the graph's <c>logits</c>.
    /// </summary>
    private static double[][] ReadmeStyleLogits(InferenceSession session, string tokenizerJson, string[] texts)
    {
        using var tokenizer = new Tokenizers.DotNet.Tokenizer(vocabPath: tokenizerJson);
        var encoded = texts.Select(t => tokenizer.Encode(t).Select(id => (long)id).ToArray()).ToArray();
        int b = texts.Length, n = encoded.Max(e => e.Length);
        var ids = new long[b * n];
        var mask = new long[b * n];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < encoded[i].Length; j++) { ids[i * n + j] = encoded[i][j]; mask[i * n + j] = 1; }
        int[] shape = [b, n];
        using var results = session.Run(new[]
        {
            NamedOnnxValue.CreateFromTensor("input_ids", new DenseTensor<long>(ids, shape)),
            NamedOnnxValue.CreateFromTensor("attention_mask", new DenseTensor<long>(mask, shape)),
            NamedOnnxValue.CreateFromTensor("token_type_ids", new DenseTensor<long>(new long[b * n], shape)),
        });
        var logits = results.Single(r => r.Name == "logits").AsTensor<float>();
        return Enumerable.Range(0, b).Select(i => new double[] { logits[i, 0], logits[i, 1] }).ToArray();
    }

    /// <summary>A copy of the shared run's adapter with alpha ~ 0.3 N(0, 1) and lora_B ~ 0.05 N(0, 1) everywhere.</summary>
    private static string HandSetAdapter(string into)
    {
        var dir = CopyAdapter(into, "hand-set");
        torch.manual_seed(21);
        EditWeights(Path.Combine(dir, AdapterFile.WeightsName), d =>
        {
            foreach (var key in d.Keys.ToList())
                if (key.EndsWith(".alpha")) d[key] = randn(d[key].shape) * 0.3;
                else if (key.EndsWith("lora_B.weight")) d[key] = randn(d[key].shape) * 0.05;
        });
        return dir;
    }

    private static string CopyAdapter(string into, string name = "adapter")
    {
        var src = Path.Combine(TrainedRun.Dir, FineTune.AdapterFolder);
        var dst = Path.Combine(into, name);
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(src)) File.Copy(f, Path.Combine(dst, Path.GetFileName(f)));
        return dst;
    }

    private static void EditWeights(string path, Action<Dictionary<string, Tensor>> edit)
    {
        var dict = Safetensors.LoadStateDict(path);
        edit(dict);
        // PyBridge writes into an existing file without truncating it: a fresh file, so no stale bytes trail the tensors.
        File.Delete(path);
        Safetensors.SaveStateDict(path, dict);
        foreach (var t in dict.Values) t.Dispose();
    }
}
