using System.Security.Cryptography;
using System.Text;
using CoeffTune.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Methods;

/// <summary>One optimiser parameter group: a method's parameters with their learning rate and weight decay.</summary>
public sealed record ParameterGroup(string Method, IReadOnlyList<Parameter> Parameters, double LearningRate, double WeightDecay);

/// <summary>Trainable parameters per method, the head, and the base model's size.</summary>
public sealed record TrainableReport(IReadOnlyList<(string Method, long Count)> PerMethod, long Head, long BaseParameters)
{
    public long Total => PerMethod.Sum(m => m.Count) + Head;
    public double Percent => 100.0 * Total / BaseParameters;

    /// <summary>e.g. "trainable: 1,728 coeff + 73,728 lora + 770 head = 76,226 of 22,713,216 (0.34%)".</summary>
    public override string ToString()
    {
        var parts = PerMethod.Where(m => m.Count > 0).Select(m => $"{m.Count:N0} {m.Method}").Append($"{Head:N0} head");
        return $"trainable: {string.Join(" + ", parts)} = {Total:N0} of {BaseParameters:N0} ({Percent:0.00}%)";
    }
}

/// <summary>
/// A model wrapped with a recipe: every base parameter frozen except what the recipe trains and the
/// classification head. Offers the parameter groups, the trainable report, merging, a scope that
/// turns all adapters off, and adapter files (<see cref="Adapters.AdapterFile"/>).
/// </summary>
public sealed class PeftModel
{
    public TransformerClassifier Model { get; }
    public IReadOnlyList<IAttachedMethod> Methods { get; }
    public string Recipe { get; }
    /// <summary>Fingerprint of the frozen base weights (head excluded), taken before anything was attached.</summary>
    public string BaseIdentity { get; }

    private PeftModel(TransformerClassifier model, IReadOnlyList<IAttachedMethod> methods, string baseIdentity)
    {
        Model = model;
        Methods = methods;
        Recipe = CoeffTune.Methods.Recipe.Format(methods.Select(m => m.Config));
        BaseIdentity = baseIdentity;
    }

    /// <summary>Wraps <paramref name="model"/> with a recipe string such as "coeff+lora".</summary>
    public static PeftModel Wrap(TransformerClassifier model, string recipe, IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonObject>? options = null) =>
        Wrap(model, CoeffTune.Methods.Recipe.Parse(recipe, options).ToArray());

    /// <summary>Wraps <paramref name="model"/> with method configs, e.g. new CoeffConfig(), new LoraConfig(rank: 8).</summary>
    public static PeftModel Wrap(TransformerClassifier model, params IMethodConfig[] configs)
    {
        if (configs.Length == 0) throw new ArgumentException("a recipe needs at least one method");
        var identity = Fingerprint(model);
        foreach (var p in model.parameters()) p.requires_grad = false;
        var attached = configs.Select(c => c.Attach(model)).ToList();
        var byName = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var name in attached.SelectMany(m => m.TrainableNames).Concat(HeadNames(model)))
            byName[name].requires_grad = true;
        return new PeftModel(model, attached, identity);
    }

    private static IEnumerable<string> HeadNames(TransformerClassifier model) =>
        model.named_parameters().Select(p => p.name).Where(n => n.StartsWith(model.HeadName + "."));

    /// <summary>State-dict names of every trainable tensor: the methods' and the head's.</summary>
    public IReadOnlyList<string> TrainableNames => Methods.SelectMany(m => m.TrainableNames).Concat(HeadNames(Model)).ToList();

    public TrainableReport Report()
    {
        var sizes = Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.numel());
        var per = Methods.Select(m => (m.Config.Method, m.TrainableNames.Sum(n => sizes[n]))).ToList();
        return new TrainableReport(per, HeadNames(Model).Sum(n => sizes[n]), Model.BaseParameterCount);
    }

    /// <summary>One group per method with parameters (its own lr/wd where set), then the head's.</summary>
    public IReadOnlyList<ParameterGroup> ParameterGroups(double learningRate, double weightDecay)
    {
        var byName = Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var groups = Methods.Where(m => m.TrainableNames.Count > 0)
            .Select(m => new ParameterGroup(m.Config.Method, m.TrainableNames.Select(n => byName[n]).ToList(),
                m.Config.LearningRate ?? learningRate, m.Config.WeightDecay ?? weightDecay)).ToList();
        groups.Add(new ParameterGroup("head", HeadNames(Model).Select(n => byName[n]).ToList(), learningRate, weightDecay));
        return groups;
    }

    /// <summary>
    /// Within the scope every adapter is off: the base model's computation (with the trained head). Methods
    /// that train the base weights in place (bitfit, full) have nothing separate to turn off.
    /// </summary>
    public IDisposable DisableAdapters()
    {
        var before = Methods.Select(m => m.Enabled).ToArray();
        foreach (var m in Methods) m.Enabled = false;
        return new Restore(() => { for (int i = 0; i < Methods.Count; i++) Methods[i].Enabled = before[i]; });
    }

    private sealed class Restore(Action action) : IDisposable
    {
        public void Dispose() => action();
    }

    /// <summary>Merges what can be merged into the base weights; returns a sentence saying what stays at runtime.</summary>
    public string Merge()
    {
        foreach (var m in Methods.Where(m => m.CanMerge)) m.Merge();
        return MergeSummary("merged");
    }

    public string Unmerge()
    {
        // Methods compose in the order they were attached (their hooks run in that order): undo in reverse.
        foreach (var m in Methods.Where(m => m.CanMerge).Reverse()) m.Unmerge();
        return MergeSummary("unmerged");
    }

    private string MergeSummary(string verb)
    {
        var merged = Methods.Where(m => m.CanMerge).Select(m => m.Config.Method).ToList();
        var runtime = Methods.Where(m => !m.CanMerge && m.TrainableNames.Count > 0).Select(m => m.Config.Method).ToList();
        var s = merged.Count > 0 ? $"{verb} {string.Join(", ", merged)}" : $"nothing to {verb[..^1]}";
        if (runtime.Contains("coeff"))
            s += "; coeff stays a runtime operation (alpha recombines the attention maps after the softmax, which no weight can express)";
        var weights = runtime.Where(r => r != "coeff").ToList();
        if (weights.Count > 0) s += $"; {string.Join(", ", weights)} trained the base weights directly";
        return s;
    }

    /// <summary>SHA-256 over the names, shapes and values of the base parameters, head excluded.</summary>
    public static string Fingerprint(TransformerClassifier model)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(model.Architecture));
        foreach (var (name, p) in model.named_parameters().Where(p => !p.name.StartsWith(model.HeadName + ".")).OrderBy(p => p.name, StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes(name + "[" + string.Join(",", p.shape) + "]"));
            using var c = p.detach().cpu().to_type(ScalarType.Float32).contiguous();
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(c.data<float>().ToArray().AsSpan()));
        }
        return "sha256:" + Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
    }
}
