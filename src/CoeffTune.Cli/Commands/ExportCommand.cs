using System.CommandLine;
using System.Globalization;
using CoeffTune.Data;
using CoeffTune.Models;
using CoeffTune.Export;
using CoeffTune.Methods.Coeff;
using CoeffTune.Text;

namespace CoeffTune.Cli.Commands;

/// <summary>
/// <c>coefftune export --adapter DIR --out model.onnx [--embeddings]</c>: the adapted model as one ONNX file
/// that ONNX Runtime runs without CoeffTune (LoRA, DoRA and SSF merged, Coeff-Tuning as an operation after each
/// attention Softmax, the head included), with the tokenizer files beside it for a text model.
/// </summary>
public static class ExportCommand
{
    public static Command Create()
    {
        var adapter = new Option<string>("--adapter") { Description = "adapter folder or run folder", Required = true };
        var output = new Option<string>("--out") { Description = "the .onnx file to write; a text model's tokenizer.json and tokenizer_config.json go beside it", Required = true };
        var model = new Option<string?>("--model") { Description = "base model (default: the adapter's base_model.name_or_path)" };
        var embeddings = new Option<bool>("--embeddings") { Description = "text: output the mean-pooled, L2-normalised sentence embedding instead of the logits" };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "text: tokens the shipped tokenizer keeps per input (default: the run's own, else 128)" };
        var cmd = new Command("export", "Export an adapted model to ONNX, to run wherever ONNX Runtime runs") { adapter, output, model, embeddings, maxTokens };
        cmd.SetAction(p => Run(p.GetValue(adapter)!, p.GetValue(output)!, p.GetValue(model), p.GetValue(embeddings), p.GetValue(maxTokens)));
        return cmd;
    }

    private static int Run(string adapterDir, string outPath, string? modelName, bool embeddings, int? maxTokensFlag)
    {
        if (!outPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"--out {outPath}: must end in .onnx");
        if (Directory.Exists(outPath)) throw new ArgumentException($"--out {outPath}: is a folder");
        var src = AdapterSource.Resolve(adapterDir);
        if (embeddings && ModelFamilies.Find(src.Info.Architecture)?.Classifies != TaskKind.Text)
            throw new ArgumentException($"--embeddings: sentence embeddings are for text models; the adapter is for a {src.Info.Architecture} model");
        int maxTokens = maxTokensFlag ?? src.RunMaxTokens() ?? 128;
        var m = AdaptedModel.Load(src, modelName, maxTokens, device: "cpu", Console.Error);

        double diff;
        long probes;
        try { (_, diff, probes) = m.MergeChecked(MergeCommand.Tolerance); }
        catch (InvalidOperationException e) { throw new InvalidOperationException($"{e.Message}; {outPath} not written"); }
        var labels = src.Labels((int)m.Model.Head.weight!.shape[0]);
        var onnx = OnnxExporter.Build(m.Peft, new OnnxExportOptions
        {
            Output = embeddings ? OnnxOutput.SentenceEmbedding : OnnxOutput.Logits,
            Labels = labels,
            BaseName = m.BaseName,
            MaxTokens = m.Tokenizer?.MaxLength,
        });

        // The tokenizer first and the model last, so a model file on disk always has its tokenizer beside it;
        // if the model cannot be written, the tokenizer files this run created are removed again.
        var folder = Path.GetDirectoryName(Path.GetFullPath(outPath))!;
        var created = new List<string>();
        long bytes;
        try
        {
            if (m.Tokenizer is not null)
            {
                var existed = new[] { TokenizerFiles.TokenizerJson, TokenizerFiles.ConfigJson }.Where(f => File.Exists(Path.Combine(folder, f))).ToHashSet();
                created.AddRange(ExportedTokenizer.Write(m.Tokenizer, folder).Where(p => !existed.Contains(Path.GetFileName(p))));
            }
            bytes = OnnxExporter.Write(onnx, outPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            foreach (var f in created) File.Delete(f);
            throw new IOException($"--out {outPath}: cannot write there ({e.Message})", e);
        }

        var inv = CultureInfo.InvariantCulture;
        var merged = m.Peft.Methods.Where(x => x.CanMerge).Select(x => x.Config.Method).ToList();
        int mixed = m.Peft.Methods.OfType<CoeffMethod>().Sum(c => c.Layers.Count);
        Console.WriteLine((merged.Count > 0 ? $"merged {string.Join(", ", merged)} into the weights" : "nothing to merge")
            + (mixed > 0 ? $"; coeff: alpha' mixes the heads' attention maps after each of the {mixed} Softmax nodes" : ""));
        Console.WriteLine($"merged vs unmerged logits on {probes} probe inputs: max abs diff {diff.ToString("G3", inv)}");
        var outputs = embeddings
            ? $"{OnnxExporter.SentenceEmbeddingName} [batch, {onnx.Graph.Output[0].Type.TensorType.Shape.Dim[1].DimValue}]"
            : $"{OnnxExporter.LogitsName} [batch, {labels.Count}] ({string.Join(", ", labels)})";
        var inputs = string.Join(", ", onnx.Graph.Input.Select(i => i.Name));
        Console.WriteLine($"wrote {outPath} ({bytes / 1048576.0:F1} MiB, ONNX opset {OnnxExporter.Opset}): inputs {inputs}; output {outputs}");
        if (m.Tokenizer is not null)
            Console.WriteLine($"wrote {TokenizerFiles.TokenizerJson} and {TokenizerFiles.ConfigJson} beside it (max {m.Tokenizer.MaxLength} tokens per input)");
        return 0;
    }
}
