using System.Text.Json.Nodes;

namespace CoeffTune.Methods.Ssf;

/// <summary>
/// SSF (Lian et al. 2022): scale and shift the features after chosen modules, y' = gamma * y + beta.
/// Identity initialisation by default, so a fresh model computes what the base did; the SSF paper's
/// gamma ~ N(1, 0.02), beta ~ N(0, 0.02) is selectable.
/// </summary>
public sealed record SsfConfig : IMethodConfig
{
    /// <summary>Default targets: every Linear and LayerNorm of the backbone.</summary>
    public static readonly string[] DefaultTargets = { "re:.*" };

    public IReadOnlyList<string> TargetModules { get; }
    public bool RandomInit { get; }
    public double? LearningRate { get; }
    public double? WeightDecay { get; }
    public string Method => "ssf";

    public SsfConfig(IReadOnlyList<string>? targetModules = null, bool randomInit = false, double? learningRate = null, double? weightDecay = null)
    {
        if (learningRate is { } lr && !(lr > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), lr, "learning rate must be positive");
        if (weightDecay is { } wd && !(wd >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), wd, "weight decay must be non-negative");
        TargetModules = targetModules is { Count: > 0 } ? targetModules.ToArray() : DefaultTargets;
        RandomInit = randomInit; LearningRate = learningRate; WeightDecay = weightDecay;
    }

    public static MethodDefinition Definition { get; } = new("ssf", FromJson, ModuleNames: Array.Empty<string>(), ConflictsWith: Array.Empty<string>(),
        TargetTensorSuffix: "ssf_scale", NotMergedNote: null);

    public IAttachedMethod Attach(AttachTarget target) => new SsfMethod(this, target);

    public IMethodConfig WithTargets(IReadOnlyList<string> modulePaths) => new SsfConfig(modulePaths, RandomInit, LearningRate, WeightDecay);

    public JsonObject ToJson() => new()
    {
        ["target_modules"] = ConfigJson.Array(TargetModules), ["init"] = RandomInit ? "normal" : "identity",
        ["lr"] = LearningRate, ["weight_decay"] = WeightDecay,
    };

    public static SsfConfig FromJson(JsonObject o) => new(ConfigJson.Strings(o, "target_modules", "ssf"),
        (o["init"]?.GetValue<string>() ?? "identity") switch
        {
            "identity" => false, "normal" => true,
            var s => throw new FormatException($"ssf: 'init' must be identity or normal, got '{s}'"),
        },
        ConfigJson.Double(o, "lr", "ssf"), ConfigJson.Double(o, "weight_decay", "ssf"));
}
