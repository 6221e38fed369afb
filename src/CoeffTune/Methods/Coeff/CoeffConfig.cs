using System.Text.Json.Nodes;

namespace CoeffTune.Methods.Coeff;

/// <summary>How the mixing matrix alpha' is formed from the trainable alpha (paper Table 5a).</summary>
public enum AlphaParameterization
{
    /// <summary>alpha' = I + Dropout(alpha), alpha = 0 at start (the paper's default).</summary>
    Residual,
    /// <summary>alpha' = Dropout(alpha), alpha = I at start.</summary>
    DirectIdentity,
    /// <summary>alpha' = Dropout(alpha), alpha ~ U(-1/sqrt(H), 1/sqrt(H)) at start.</summary>
    DirectRandom,
}

/// <summary>Coeff-Tuning's settings. Immutable and validated at construction.</summary>
public sealed record CoeffConfig : IMethodConfig
{
    public string Method => "coeff";
    /// <summary>Coefficient dropout p on the entries of alpha, training only (paper Sec. 3.3).</summary>
    public double Dropout { get; init; }
    public AlphaParameterization Parameterization { get; init; }
    /// <summary>Learning rate for alpha; null takes the trainer's.</summary>
    public double? LearningRate { get; init; }
    /// <summary>Weight decay for alpha; null takes the trainer's.</summary>
    public double? WeightDecay { get; init; }
    /// <summary>
    /// Module-name patterns (see <see cref="Targets"/>) choosing the attention layers that get an alpha, e.g.
    /// "self_attn" or "re:decoder\..*encoder_attn" to pick self- or cross-attention, encoder or decoder; null: every
    /// attention layer of the model.
    /// </summary>
    public IReadOnlyList<string>? TargetModules { get; init; }

    public CoeffConfig(double dropout = 0.0, AlphaParameterization parameterization = AlphaParameterization.Residual,
        double? learningRate = null, double? weightDecay = null, IReadOnlyList<string>? targetModules = null)
    {
        TargetModules = targetModules is { Count: > 0 } ? targetModules.ToArray() : null;
        if (!(dropout >= 0.0 && dropout < 1.0))
            throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "coefficient dropout must be in [0, 1)");
        if (learningRate is { } lr && !(lr > 0))
            throw new ArgumentOutOfRangeException(nameof(learningRate), lr, "learning rate must be positive");
        if (weightDecay is { } wd && !(wd >= 0))
            throw new ArgumentOutOfRangeException(nameof(weightDecay), wd, "weight decay must be non-negative");
        Dropout = dropout;
        Parameterization = parameterization;
        LearningRate = learningRate;
        WeightDecay = weightDecay;
    }

    public static MethodDefinition Definition { get; } = new("coeff", FromJson, new[] { CoeffTuning.ModuleName }, Array.Empty<string>(),
        TargetTensorSuffix: CoeffTuning.ModuleName + ".alpha",
        NotMergedNote: "stays a runtime operation (alpha recombines the attention maps after the softmax, which no weight can express)");

    public IAttachedMethod Attach(AttachTarget target) => new CoeffMethod(this, target);

    public IMethodConfig WithTargets(IReadOnlyList<string> modulePaths) => this with { TargetModules = modulePaths.ToArray() };

    public JsonObject ToJson() => new()
    {
        ["coeff_dropout"] = Dropout, ["parameterization"] = Parameterization switch
        {
            AlphaParameterization.Residual => "residual", AlphaParameterization.DirectIdentity => "direct-identity",
            _ => "direct-random",
        },
        ["lr"] = LearningRate, ["weight_decay"] = WeightDecay,
        ["target_modules"] = TargetModules is null ? null : ConfigJson.Array(TargetModules),
    };

    public static AlphaParameterization ParseParameterization(string s) => s switch
    {
        "residual" => AlphaParameterization.Residual,
        "direct-identity" => AlphaParameterization.DirectIdentity,
        "direct-random" => AlphaParameterization.DirectRandom,
        _ => throw new FormatException($"coeff: parameterization must be residual, direct-identity or direct-random, got '{s}'"),
    };

    public static CoeffConfig FromJson(JsonObject o) => new(
        ConfigJson.Double(o, "coeff_dropout", "coeff") ?? 0,
        ParseParameterization(o["parameterization"]?.GetValue<string>() ?? "residual"),
        ConfigJson.Double(o, "lr", "coeff"), ConfigJson.Double(o, "weight_decay", "coeff"), ConfigJson.Strings(o, "target_modules", "coeff"));
}
