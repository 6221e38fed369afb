using System.Text.Json.Nodes;

namespace CoeffTune.Methods.Adapter;

/// <summary>
/// Bottleneck adapters (Houlsby et al., "Parameter-Efficient Transfer Learning for NLP", ICML 2019): after the attention
/// and after the MLP of every layer, before the residual sum, h -> h + W_up GELU(W_down h + b_down) + b_up, with a
/// bottleneck of a few features. W_up and b_up start at zero (instead of the paper's near-zero draw), so a freshly
/// wrapped model computes exactly what the base model did. The nonlinearity cannot be merged into any weight.
/// </summary>
public sealed record AdapterConfig : IMethodConfig
{
    public int Size { get; }
    /// <summary>
    /// Module-name patterns (see <see cref="Targets"/>) of the modules whose output is adapted (attention layers or
    /// Linears); null: every attention layer, and every Linear that maps a wider hidden layer back to the model width
    /// (the MLP's second projection).
    /// </summary>
    public IReadOnlyList<string>? TargetModules { get; }
    public double? LearningRate { get; }
    public double? WeightDecay { get; }
    public string Method => "adapter";

    public AdapterConfig(int size = 8, IReadOnlyList<string>? targetModules = null, double? learningRate = null, double? weightDecay = null)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "adapter bottleneck size must be at least 1");
        if (learningRate is { } lr && !(lr > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), lr, "learning rate must be positive");
        if (weightDecay is { } wd && !(wd >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), wd, "weight decay must be non-negative");
        Size = size;
        TargetModules = targetModules is { Count: > 0 } ? targetModules.ToArray() : null;
        LearningRate = learningRate; WeightDecay = weightDecay;
    }

    public static MethodDefinition Definition { get; } = new("adapter", FromJson, new[] { AdapterMethod.ModuleName }, ConflictsWith: Array.Empty<string>(),
        TargetTensorSuffix: AdapterMethod.ModuleName + ".down.weight",
        NotMergedNote: "stay a runtime operation (a GELU bottleneck, which no weight can express)");

    public IAttachedMethod Attach(AttachTarget target) => new AdapterMethod(this, target);

    public IMethodConfig WithTargets(IReadOnlyList<string> modulePaths) => new AdapterConfig(Size, modulePaths, LearningRate, WeightDecay);

    public JsonObject ToJson() => new()
    {
        ["size"] = Size, ["target_modules"] = TargetModules is null ? null : ConfigJson.Array(TargetModules),
        ["lr"] = LearningRate, ["weight_decay"] = WeightDecay,
    };

    public static AdapterConfig FromJson(JsonObject o) => new(
        ConfigJson.Int(o, "size", "adapter") ?? 8, ConfigJson.Strings(o, "target_modules", "adapter"),
        ConfigJson.Double(o, "lr", "adapter"), ConfigJson.Double(o, "weight_decay", "adapter"));
}
