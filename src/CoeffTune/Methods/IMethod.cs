using System.Text.Json.Nodes;
using CoeffTune.Models;

namespace CoeffTune.Methods;

/// <summary>
/// A fine-tuning method's settings: plain data, validated at construction, serialisable, and able
/// to attach the method to a model. Every method lives in its own folder: its config (this), its
/// layer math, and how it attaches.
/// </summary>
public interface IMethodConfig
{
    /// <summary>The name in a recipe string, e.g. "lora".</summary>
    string Method { get; }
    /// <summary>Learning rate for this method's parameters; null takes the trainer's.</summary>
    double? LearningRate { get; }
    /// <summary>Weight decay for this method's parameters; null takes the trainer's.</summary>
    double? WeightDecay { get; }
    /// <summary>Attaches the method to <paramref name="model"/>; fails loudly on a target that matches nothing.</summary>
    IAttachedMethod Attach(TransformerClassifier model);
    JsonObject ToJson();
}

/// <summary>A method attached to a model.</summary>
public interface IAttachedMethod
{
    IMethodConfig Config { get; }
    /// <summary>State-dict names of the parameters this method trains (the head excluded).</summary>
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
