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
/// A model wrapped with a recipe: every base parameter frozen except what the recipe trains and the task's
/// modules to save (a classification head, as in Hugging Face PEFT). Methods attach to any module tree by
/// target patterns; the model family names the model for adapter files. Offers the parameter groups, the
/// trainable report, merging, a scope that turns all adapters off, the attached methods by type, and
/// adapter files (<see cref="Adapters.AdapterFile"/>).
/// </summary>
public sealed class PeftModel
{
    public torch.nn.Module Model { get; }
    public IReadOnlyList<IAttachedMethod> Methods { get; }
    public string Recipe { get; }
    /// <summary>Fingerprint of the frozen base weights (modules to save excluded), taken before anything was attached.</summary>
    public string BaseIdentity { get; }
    /// <summary>The model family's tag, e.g. "bert" or "vit".</summary>
    public string Architecture { get; }
    /// <summary>Module paths that train whole and are saved with the adapter (the classification head).</summary>
    public IReadOnlyList<string> ModulesToSave { get; }
    /// <summary>Parameters of the model before any method was attached.</summary>
    public long BaseParameterCount { get; }

    private PeftModel(torch.nn.Module model, string architecture, IReadOnlyList<string> modulesToSave, IReadOnlyList<IAttachedMethod> methods,
        string baseIdentity, long baseParameters)
    {
        Model = model;
        Architecture = architecture;
        ModulesToSave = modulesToSave;
        Methods = methods;
        Recipe = CoeffTune.Methods.Recipe.Format(methods.Select(m => m.Config));
        BaseIdentity = baseIdentity;
        BaseParameterCount = baseParameters;
    }

    /// <summary>The wrapped model as a classifier; fails for a model of another task.</summary>
    public TransformerClassifier Classifier => Model as TransformerClassifier
        ?? throw new InvalidOperationException($"the wrapped model is a {Model.GetType().Name}, not a classifier");

    /// <summary>Wraps <paramref name="model"/> with a recipe string such as "coeff+lora".</summary>
    public static PeftModel Wrap(TransformerClassifier model, string recipe, IReadOnlyDictionary<string, System.Text.Json.Nodes.JsonObject>? options = null) =>
        Wrap(model, CoeffTune.Methods.Recipe.Parse(recipe, options).ToArray());

    /// <summary>Wraps a classifier with method configs, e.g. new CoeffConfig(), new LoraConfig(rank: 8); its head trains whole.</summary>
    public static PeftModel Wrap(TransformerClassifier model, params IMethodConfig[] configs) =>
        Wrap(model, model.Architecture, new[] { model.HeadName }, configs);

    /// <summary>
    /// Wraps any module tree: <paramref name="modulesToSave"/> (module paths) train whole and no method attaches
    /// inside them. The modules the methods add take the model's train/eval mode.
    /// </summary>
    public static PeftModel Wrap(torch.nn.Module model, string architecture, IReadOnlyList<string> modulesToSave, params IMethodConfig[] configs)
    {
        if (configs.Length == 0) throw new ArgumentException("a recipe needs at least one method");
        CoeffTune.Methods.Recipe.CheckConflicts(CoeffTune.Methods.Recipe.Format(configs), configs.Select(c => c.Method).ToList());
        var modules = model.named_modules().Select(m => m.name).ToHashSet();
        foreach (var m in modulesToSave.Where(m => !modules.Contains(m)))
            throw new ArgumentException($"module to save '{m}' is not a module of the model; closest names: {string.Join(", ", Targets.Closest(m, modules, 5))}");
        bool training = model.training;
        var identity = Fingerprint(model, architecture, modulesToSave);
        long baseParameters = model.parameters().Sum(p => p.numel());
        foreach (var p in model.parameters()) p.requires_grad = false;
        var target = new AttachTarget(model, modulesToSave);
        var attached = configs.Select(c => c.Attach(target)).ToList();
        var byName = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var name in attached.SelectMany(m => m.TrainableNames).Concat(SavedNames(model, modulesToSave)))
            byName[name].requires_grad = true;
        // Modules are created in training mode; the model's mode is what its caller chose.
        model.train(training);
        return new PeftModel(model, architecture, modulesToSave, attached, identity, baseParameters);
    }

    private static IEnumerable<string> SavedNames(torch.nn.Module model, IReadOnlyList<string> modulesToSave) =>
        model.named_parameters().Select(p => p.name).Where(n => modulesToSave.Any(m => n.StartsWith(m + ".", StringComparison.Ordinal)));

    /// <summary>State-dict names of the modules to save (the head).</summary>
    public IReadOnlyList<string> SavedModuleNames => SavedNames(Model, ModulesToSave).ToList();

    /// <summary>State-dict names of every trainable tensor: the methods' and the modules to save.</summary>
    public IReadOnlyList<string> TrainableNames => Methods.SelectMany(m => m.TrainableNames).Concat(SavedModuleNames).ToList();

    /// <summary>The attached method of type <typeparamref name="T"/> (e.g. CoeffMethod, LoraMethod), or null.</summary>
    public T? Find<T>() where T : class, IAttachedMethod => Methods.OfType<T>().FirstOrDefault();

    /// <summary>The attached method of type <typeparamref name="T"/>; fails naming the recipe when there is none.</summary>
    public T Method<T>() where T : class, IAttachedMethod =>
        Find<T>() ?? throw new InvalidOperationException($"recipe '{Recipe}' has no {typeof(T).Name}");

    public TrainableReport Report()
    {
        var sizes = Model.named_parameters().ToDictionary(p => p.name, p => p.parameter.numel());
        var per = Methods.Select(m => (m.Config.Method, m.TrainableNames.Sum(n => sizes[n]))).ToList();
        return new TrainableReport(per, SavedModuleNames.Sum(n => sizes[n]), BaseParameterCount);
    }

    /// <summary>One group per method with parameters (its own lr/wd where set), then the modules to save.</summary>
    public IReadOnlyList<ParameterGroup> ParameterGroups(double learningRate, double weightDecay)
    {
        var byName = Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        var groups = Methods.Where(m => m.TrainableNames.Count > 0)
            .Select(m => new ParameterGroup(m.Config.Method, m.TrainableNames.Select(n => byName[n]).ToList(),
                m.Config.LearningRate ?? learningRate, m.Config.WeightDecay ?? weightDecay)).ToList();
        if (SavedModuleNames.Count > 0)
            groups.Add(new ParameterGroup("head", SavedModuleNames.Select(n => byName[n]).ToList(), learningRate, weightDecay));
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
        var s = merged.Count > 0 ? $"{verb} {string.Join(", ", merged)}" : $"nothing to {verb[..^1]}";
        // What stays, grouped by what each method says of itself.
        var runtime = Methods.Where(m => !m.CanMerge && m.TrainableNames.Count > 0)
            .GroupBy(m => MethodRegistry.Get(m.Config.Method).NotMergedNote).Where(g => g.Key is not null);
        foreach (var g in runtime) s += $"; {string.Join(", ", g.Select(m => m.Config.Method))} {g.Key}";
        return s;
    }

    /// <summary>SHA-256 over the names, shapes and values of the base parameters, head excluded.</summary>
    public static string Fingerprint(TransformerClassifier model) => Fingerprint(model, model.Architecture, new[] { model.HeadName });

    /// <summary>SHA-256 over the architecture tag and the names, shapes and values of the parameters outside <paramref name="excluded"/>.</summary>
    public static string Fingerprint(torch.nn.Module model, string architecture, IReadOnlyList<string> excluded)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        sha.AppendData(Encoding.UTF8.GetBytes(architecture));
        foreach (var (name, p) in model.named_parameters().Where(p => !excluded.Any(e => p.name.StartsWith(e + ".", StringComparison.Ordinal)))
                     .OrderBy(p => p.name, StringComparer.Ordinal))
        {
            sha.AppendData(Encoding.UTF8.GetBytes(name + "[" + string.Join(",", p.shape) + "]"));
            using var c = p.detach().cpu().to_type(ScalarType.Float32).contiguous();
            sha.AppendData(System.Runtime.InteropServices.MemoryMarshal.AsBytes(c.data<float>().ToArray().AsSpan()));
        }
        return "sha256:" + Convert.ToHexString(sha.GetHashAndReset())[..16].ToLowerInvariant();
    }
}
