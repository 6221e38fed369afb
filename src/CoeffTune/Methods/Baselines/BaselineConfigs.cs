using System.Text.Json.Nodes;

namespace CoeffTune.Methods.Baselines;

/// <summary>Linear probing: only the classification head trains (the head is trainable in every recipe).</summary>
public sealed record LinearProbeConfig(double? LearningRate = null, double? WeightDecay = null) : IMethodConfig
{
    public string Method => "linear";
    public static MethodDefinition Definition { get; } = new("linear", FromJson, Array.Empty<string>(), Array.Empty<string>(), null, null);
    public IAttachedMethod Attach(AttachTarget target) => new FrozenSubsetMethod(this, target, _ => false);
    public JsonObject ToJson() => new() { ["lr"] = LearningRate, ["weight_decay"] = WeightDecay };
    public static LinearProbeConfig FromJson(JsonObject o) => new(ConfigJson.Double(o, "lr", "linear"), ConfigJson.Double(o, "weight_decay", "linear"));
}

/// <summary>Full fine-tuning: every parameter of the backbone trains.</summary>
public sealed record FullConfig(double? LearningRate = null, double? WeightDecay = null) : IMethodConfig
{
    public string Method => "full";
    public static MethodDefinition Definition { get; } = new("full", FromJson, Array.Empty<string>(), Array.Empty<string>(), null,
        NotMergedNote: FrozenSubsetMethod.NotMergedNote);
    public IAttachedMethod Attach(AttachTarget target) => new FrozenSubsetMethod(this, target, _ => true);
    public JsonObject ToJson() => new() { ["lr"] = LearningRate, ["weight_decay"] = WeightDecay };
    public static FullConfig FromJson(JsonObject o) => new(ConfigJson.Double(o, "lr", "full"), ConfigJson.Double(o, "weight_decay", "full"));
}
