using System.Text.Json.Nodes;

namespace CoeffTune.Methods.Fact;

/// <summary>
/// FacT-TT (Jie and Deng, "FacT: Factor-Tuning for Lightweight Adaptation on Vision Transformer", AAAI 2023): the
/// updates of all layers' weights form one tensor, factorised tensor-train style. One pair of factors is shared by the
/// whole model, U (D -> r) and V (r -> D, zero at start); every adapted projection has its own small core C, and its
/// output gains s V dropout(C U x) (Eq. 9 of the paper). A D x D projection (query, key, value, attention output) has
/// an r x r core; a projection between D and m D features (the MLP's, m = 4 in ViT-B) works on m blocks of D: its core
/// is m r x r or r x m r. The update is linear in x, so it merges into the weights.
/// </summary>
public sealed record FactConfig : IMethodConfig
{
    public int Rank { get; }
    /// <summary>The scale s of the update (the authors' per-task choice is one of 0.01, 0.1, 1, 10, 100).</summary>
    public double Scale { get; }
    /// <summary>Dropout between the core and V, training only (the authors use 0.1).</summary>
    public double Dropout { get; }
    /// <summary>
    /// Module-name patterns (see <see cref="Targets"/>) of the Linears to adapt; null: every Linear of the backbone whose
    /// input and output widths are multiples of the model width D (attention and MLP projections).
    /// </summary>
    public IReadOnlyList<string>? TargetModules { get; }
    public double? LearningRate { get; }
    public double? WeightDecay { get; }
    public string Method => "fact";

    public FactConfig(int rank = 8, double scale = 1.0, double dropout = 0.1, IReadOnlyList<string>? targetModules = null,
        double? learningRate = null, double? weightDecay = null)
    {
        if (rank < 1) throw new ArgumentOutOfRangeException(nameof(rank), rank, "FacT rank must be at least 1");
        if (!(scale > 0) || double.IsInfinity(scale)) throw new ArgumentOutOfRangeException(nameof(scale), scale, "FacT scale must be positive and finite");
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "FacT dropout must be in [0, 1)");
        if (learningRate is { } lr && !(lr > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), lr, "learning rate must be positive");
        if (weightDecay is { } wd && !(wd >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), wd, "weight decay must be non-negative");
        Rank = rank; Scale = scale; Dropout = dropout;
        TargetModules = targetModules is { Count: > 0 } ? targetModules.ToArray() : null;
        LearningRate = learningRate; WeightDecay = weightDecay;
    }

    public static MethodDefinition Definition { get; } = new("fact", FromJson, FactMethod.ModuleNames, ConflictsWith: Array.Empty<string>(),
        TargetTensorSuffix: FactMethod.CoreName, NotMergedNote: null);

    public IAttachedMethod Attach(AttachTarget target) => new FactMethod(this, target);

    public IMethodConfig WithTargets(IReadOnlyList<string> modulePaths) => new FactConfig(Rank, Scale, Dropout, modulePaths, LearningRate, WeightDecay);

    public JsonObject ToJson() => new()
    {
        ["r"] = Rank, ["scale"] = Scale, ["dropout"] = Dropout,
        ["target_modules"] = TargetModules is null ? null : ConfigJson.Array(TargetModules),
        ["lr"] = LearningRate, ["weight_decay"] = WeightDecay,
    };

    public static FactConfig FromJson(JsonObject o) => new(
        ConfigJson.Int(o, "r", "fact") ?? 8, ConfigJson.Double(o, "scale", "fact") ?? 1.0, ConfigJson.Double(o, "dropout", "fact") ?? 0.1,
        ConfigJson.Strings(o, "target_modules", "fact"), ConfigJson.Double(o, "lr", "fact"), ConfigJson.Double(o, "weight_decay", "fact"));
}
