using System.Text.Json.Nodes;

namespace CoeffTune.Methods.Snell;

/// <summary>
/// SNELL (Shen et al., "Expanding Sparse Tuning for Low Memory Usage", NeurIPS 2024): sparse tuning of every adapted
/// Linear through an update merged from two low-rank factors by a nonlinear kernel, then sparsified by competition.
/// As the authors' code computes it (their <c>SNELL</c> and <c>KLoRA</c> modules), for a Linear of n inputs and m outputs:
/// <list type="bullet">
/// <item>Factors: A (2, n, r/2) for the inputs and B (2, m, r/2) for the outputs ("SNELL-8" is r = 8, so each of the two
/// kernel terms works in r/2 = 4 dimensions), both Kaiming-uniform (bounds 1/sqrt(n r/2) and 1/sqrt(m r/2)).</item>
/// <item>Kernel merge: Delta[i, j] = 0.1 (||A_0,i - B_0,j|| - ||A_1,i - B_1,j||), a signed sum of Euclidean distances
/// between rows of the input and output factors (n x m; the output gains x Delta).</item>
/// <item>Competition (sparsity s > 0): only entries whose |Delta| is above the s-quantile of |Delta| survive, and each
/// survivor is multiplied by its own magnitude, held constant for the gradient: Delta_s = Delta * stopgrad(|Delta|) *
/// [|Delta| > q_s]. No index is stored; the mask is recomputed from the factors at every step. With s = 0 the authors'
/// code uses the plain kernel merge (no mask, no magnitude factor); so does this.</item>
/// <item>Beside the frozen weight: y = W x + b + DropPath(Delta_s^T Dropout(x)), with input dropout 0.1 and drop-path 0.1
/// in training, the authors' defaults. At evaluation the update is linear in x, so it merges into W.</item>
/// </list>
/// The update is not zero at start (the two distance terms are independent random draws).
/// </summary>
public sealed record SnellConfig : IMethodConfig
{
    /// <summary>The kernel's scale, fixed in the authors' code (SCALE_FACTOR_fc).</summary>
    public const double KernelScale = 0.1;

    public int Rank { get; }
    /// <summary>Fraction of the update's entries zeroed (the authors' init_thres).</summary>
    public double Sparsity { get; }
    public double Dropout { get; }
    public double DropPath { get; }
    /// <summary>Module-name patterns (see <see cref="Targets"/>) of the Linears to adapt; null: every Linear of the backbone.</summary>
    public IReadOnlyList<string>? TargetModules { get; }
    public double? LearningRate { get; }
    public double? WeightDecay { get; }
    public string Method => "snell";

    public SnellConfig(int rank = 8, double sparsity = 0.4, double dropout = 0.1, double dropPath = 0.1, IReadOnlyList<string>? targetModules = null,
        double? learningRate = null, double? weightDecay = null)
    {
        if (rank < 2 || rank % 2 != 0) throw new ArgumentOutOfRangeException(nameof(rank), rank, "SNELL rank must be even and at least 2 (two kernel terms of r/2 dimensions)");
        if (!(sparsity >= 0 && sparsity < 1)) throw new ArgumentOutOfRangeException(nameof(sparsity), sparsity, "SNELL sparsity must be in [0, 1)");
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "SNELL dropout must be in [0, 1)");
        if (!(dropPath >= 0 && dropPath < 1)) throw new ArgumentOutOfRangeException(nameof(dropPath), dropPath, "SNELL drop-path must be in [0, 1)");
        if (learningRate is { } lr && !(lr > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), lr, "learning rate must be positive");
        if (weightDecay is { } wd && !(wd >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), wd, "weight decay must be non-negative");
        Rank = rank; Sparsity = sparsity; Dropout = dropout; DropPath = dropPath;
        TargetModules = targetModules is { Count: > 0 } ? targetModules.ToArray() : null;
        LearningRate = learningRate; WeightDecay = weightDecay;
    }

    public static MethodDefinition Definition { get; } = new("snell", FromJson, ModuleNames: Array.Empty<string>(), ConflictsWith: Array.Empty<string>(),
        TargetTensorSuffix: SnellMethod.InName, NotMergedNote: null);

    public IAttachedMethod Attach(AttachTarget target) => new SnellMethod(this, target);

    public IMethodConfig WithTargets(IReadOnlyList<string> modulePaths) => new SnellConfig(Rank, Sparsity, Dropout, DropPath, modulePaths, LearningRate, WeightDecay);

    public JsonObject ToJson() => new()
    {
        ["r"] = Rank, ["sparsity"] = Sparsity, ["dropout"] = Dropout, ["drop_path"] = DropPath,
        ["target_modules"] = TargetModules is null ? null : ConfigJson.Array(TargetModules),
        ["lr"] = LearningRate, ["weight_decay"] = WeightDecay,
    };

    public static SnellConfig FromJson(JsonObject o) => new(
        ConfigJson.Int(o, "r", "snell") ?? 8, ConfigJson.Double(o, "sparsity", "snell") ?? 0.4, ConfigJson.Double(o, "dropout", "snell") ?? 0.1,
        ConfigJson.Double(o, "drop_path", "snell") ?? 0.1, ConfigJson.Strings(o, "target_modules", "snell"),
        ConfigJson.Double(o, "lr", "snell"), ConfigJson.Double(o, "weight_decay", "snell"));
}
