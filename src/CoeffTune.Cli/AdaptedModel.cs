using CoeffTune.Adapters;
using CoeffTune.Checkpoints;
using CoeffTune.Data;
using CoeffTune.Methods;
using CoeffTune.Models;
using CoeffTune.Text;
using CoeffTune.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Cli;

/// <summary>
/// An adapter named on the command line: an adapter folder, or a run folder (one holding
/// <c>adapter/</c> and <c>split.json</c>), whose adapter is used and whose test split can be reused.
/// </summary>
public sealed record AdapterSource(string AdapterDir, string? RunDir, AdapterInfo Info)
{
    public const string RunResultFile = "result.json";
    public string? SplitPath => RunDir is null || !File.Exists(Path.Combine(RunDir, FineTune.SplitFile)) ? null : Path.Combine(RunDir, FineTune.SplitFile);

    public static AdapterSource Resolve(string dir, string flag = "--adapter")
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{flag} {dir}: folder not found");
        var inner = Path.Combine(dir, FineTune.AdapterFolder);
        // A classification run keeps its split; a sequence-to-sequence run its result (its test pairs follow from the file).
        if (Directory.Exists(inner) && (File.Exists(Path.Combine(dir, FineTune.SplitFile)) || File.Exists(Path.Combine(dir, RunResultFile))))
            return new AdapterSource(inner, dir, AdapterFile.ReadInfo(inner));
        if (!File.Exists(Path.Combine(dir, AdapterFile.ConfigName)))
            throw new FileNotFoundException($"{flag} {dir}: neither an adapter folder ({AdapterFile.ConfigName}) nor a run folder ({FineTune.AdapterFolder}/ and {FineTune.SplitFile} or {RunResultFile})");
        return new AdapterSource(dir, null, AdapterFile.ReadInfo(dir));
    }

    /// <summary>The max tokens a run folder's run used (its final metrics line); null for an adapter folder or an unfinished run.</summary>
    public int? RunMaxTokens()
    {
        var path = RunDir is null ? null : Path.Combine(RunDir, FineTune.MetricsFile);
        var final = path is not null && File.Exists(path) ? File.ReadLines(path).LastOrDefault(l => l.Contains("\"final\"")) : null;
        if (final is null) return null;
        using var doc = System.Text.Json.JsonDocument.Parse(final);
        return doc.RootElement.TryGetProperty("max_tokens", out var v) && v.TryGetInt32(out int n) ? n : null;
    }

    /// <summary>The adapter's class names; positions when it recorded none.</summary>
    public IReadOnlyList<string> Labels(int classes) =>
        Info.Labels.Count == classes ? Info.Labels : Enumerable.Range(0, classes).Select(i => i.ToString()).ToList();
}

/// <summary>The base model an adapter names, rebuilt, with the adapter loaded on it (identity checked).</summary>
public sealed class AdaptedModel
{
    public required PeftModel Peft { get; init; }
    public required string BaseName { get; init; }
    /// <summary>The model family's preprocessing for this model.</summary>
    public required IModelInputs Inputs { get; init; }
    /// <summary>The text model's tokenizer; null for image models.</summary>
    public TextTokenizer? Tokenizer { get; init; }
    /// <summary>State-dict names of the plain base model, before any method was attached.</summary>
    public required IReadOnlySet<string> BaseKeys { get; init; }
    public TransformerClassifier Model => Peft.Classifier;

    /// <summary>
    /// Rebuilds the base model (<paramref name="model"/>, else the adapter's base_model.name_or_path) with a head of the
    /// adapter's classes, then loads the adapter, which refuses a base model other than the one it was trained on.
    /// </summary>
    public static AdaptedModel Load(AdapterSource src, string? model, int maxTokens, string device, TextWriter log)
    {
        var info = src.Info;
        var configPath = Path.Combine(src.AdapterDir, AdapterFile.ConfigName);
        var name = model ?? info.BaseName
            ?? throw new InvalidDataException($"{configPath}: base_model.name_or_path is empty; pass --model");
        int classes = info.Classes ?? Math.Max(1, info.Labels.Count);
        if (info.Architecture is null)
            throw new InvalidDataException($"{configPath}: neither its fields nor its tensor names say which model family the adapter is for");
        // The pooling the adapter was trained with (the head sits on that vector).
        var pooling = info.Pooling is { } p ? SentencePooling.Parse(p, configPath) : (Pooling?)null;
        var loaded = FineTune.LoadBase(name, info.Architecture, classes, maxTokens, new PretrainOptions { Device = device }, log: log, pooling: pooling,
            mayPretrain: model is not null, heads: info.Heads);
        var m = loaded.Model;
        var baseKeys = m.state_dict().Keys.ToHashSet();
        var peft = AdapterFile.Load(m, src.AdapterDir);
        m.to(TorchSharp.torch.device(device));
        m.eval();
        return new AdaptedModel { Peft = peft, BaseName = name, Inputs = loaded.Inputs, Tokenizer = loaded.Tokenizer, BaseKeys = baseKeys };
    }

    /// <summary>How to batch a labelled set of the task for this model.</summary>
    public IBatchSource Source(ILabeledDataset data) => Inputs.Source(data);

    /// <summary>
    /// Merges what can be merged into the base weights and checks, on the family's fixed probe inputs, that the logits
    /// did not move by more than <paramref name="tolerance"/>; throws if they did. Returns the merge summary,
    /// the largest change and the number of probe inputs.
    /// </summary>
    public (string Summary, double MaxAbsDiff, long Probes) MergeChecked(double tolerance)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var probe = Inputs.Probe(Model.Head.weight!.device);
        var before = Model.forward(probe);
        var summary = Peft.Merge();
        var diff = (Model.forward(probe) - before).abs().max().ToDouble();
        if (!(diff <= tolerance))
            throw new InvalidOperationException($"merging changed the logits by {diff.ToString("G3", System.Globalization.CultureInfo.InvariantCulture)} (> {tolerance:G1})");
        return (summary, diff, probe.Size);
    }

    /// <summary>Unlabelled inputs as one batch: texts for a text model, image file paths for an image model.</summary>
    public Batch Encode(IReadOnlyList<string> inputs, Device device) => Inputs.Encode(inputs, device);
}
