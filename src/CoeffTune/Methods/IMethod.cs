using System.Text.Json.Nodes;
using TorchSharp;

namespace CoeffTune.Methods;

/// <summary>
/// Where a method may attach: the model, and the module paths it must leave alone (the task's modules to
/// save, such as a classification head, which train whole).
/// </summary>
public sealed record AttachTarget(torch.nn.Module Model, IReadOnlyList<string> Excluded)
{
    public AttachTarget(torch.nn.Module model) : this(model, Array.Empty<string>()) { }

    /// <summary>True when <paramref name="path"/> is an excluded module or lies inside one.</summary>
    public bool IsExcluded(string path) => Excluded.Any(e => path == e || path.StartsWith(e + ".", StringComparison.Ordinal));
}

/// <summary>
/// A fine-tuning method's settings: plain data, validated at construction, serialisable, and able
/// to attach the method to any module tree. Every method lives in its own folder: its config (this),
/// its layer math, how it attaches, and its <see cref="MethodDefinition"/> (one line in <see cref="MethodRegistry"/>).
/// </summary>
public interface IMethodConfig
{
    /// <summary>The name in a recipe string, e.g. "lora".</summary>
    string Method { get; }
    /// <summary>Learning rate for this method's parameters; null takes the trainer's.</summary>
    double? LearningRate { get; }
    /// <summary>Weight decay for this method's parameters; null takes the trainer's.</summary>
    double? WeightDecay { get; }
    /// <summary>Attaches the method to <paramref name="target"/>'s model; fails loudly on a target pattern that matches nothing.</summary>
    IAttachedMethod Attach(AttachTarget target);
    /// <summary>The options in this library's own naming (module paths of the model as built here).</summary>
    JsonObject ToJson();
    /// <summary>
    /// The same settings acting on exactly the modules at <paramref name="modulePaths"/>: how an adapter whose
    /// tensors name their modules is reattached. Methods without module targets return themselves.
    /// </summary>
    IMethodConfig WithTargets(IReadOnlyList<string> modulePaths) => this;
    /// <summary>Hugging Face PEFT's own config fields for this method (peft_type and its options), or null when PEFT has no such method.</summary>
    JsonObject? PeftFields(IReadOnlyList<string> peftTargetModules) => null;
}

/// <summary>A method attached to a model.</summary>
public interface IAttachedMethod
{
    IMethodConfig Config { get; }
    /// <summary>State-dict names of the parameters this method trains (modules to save excluded).</summary>
    IReadOnlyList<string> TrainableNames { get; }
    /// <summary>Module paths the method acts on.</summary>
    IReadOnlyList<string> Targets { get; }
    /// <summary>False turns the method off (the base model's computation), for comparison.</summary>
    bool Enabled { get; set; }
    /// <summary>True when <see cref="Merge"/> can fold the method into the base weights.</summary>
    bool CanMerge { get; }
    bool Merged { get; }
    void Merge();
    void Unmerge();
}

/// <summary>
/// What the frame knows of a method, declared by the method itself: its recipe name, how its options are read,
/// the names under which it registers modules and parameters (never targets of another method), the methods it
/// cannot be combined with, the suffix of the tensors that name its target modules in an adapter, and what merging
/// says when the method cannot be merged.
/// </summary>
public sealed record MethodDefinition(
    string Name,
    Func<JsonObject, IMethodConfig> FromJson,
    IReadOnlyList<string> ModuleNames,
    IReadOnlyList<string> ConflictsWith,
    string? TargetTensorSuffix,
    string? NotMergedNote)
{
    /// <summary>Module paths named by adapter tensors of this method, e.g. "layers.0.attention.query" from "...query.lora_A.weight".</summary>
    public IReadOnlyList<string> TargetsFromTensorNames(IEnumerable<string> names) => TargetTensorSuffix is null ? Array.Empty<string>()
        : names.Where(n => n.EndsWith("." + TargetTensorSuffix, StringComparison.Ordinal))
            .Select(n => n[..^(TargetTensorSuffix.Length + 1)]).Distinct().ToList();
}
