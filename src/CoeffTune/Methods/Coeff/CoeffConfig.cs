using System.Text.Json.Nodes;
using CoeffTune.Models;

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

    public CoeffConfig(double dropout = 0.0, AlphaParameterization parameterization = AlphaParameterization.Residual,
        double? learningRate = null, double? weightDecay = null)
    {
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

    public IAttachedMethod Attach(TransformerClassifier model) => new CoeffMethod(this, model);

    public JsonObject ToJson() => new()
    {
        ["coeff_dropout"] = Dropout, ["parameterization"] = Parameterization switch
        {
            AlphaParameterization.Residual => "residual", AlphaParameterization.DirectIdentity => "direct-identity",
            _ => "direct-random",
        },
        ["lr"] = LearningRate, ["weight_decay"] = WeightDecay,
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
        ConfigJson.Double(o, "lr", "coeff"), ConfigJson.Double(o, "weight_decay", "coeff"));
}
