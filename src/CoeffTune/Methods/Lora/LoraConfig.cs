using System.Text.Json.Nodes;

namespace CoeffTune.Methods.Lora;

/// <summary>LoRA (Hu et al. 2021): W x + (lora_alpha / r) B A x, A Kaiming-uniform, B zero.</summary>
public sealed record LoraConfig : IMethodConfig
{
    public int Rank { get; }
    public double Alpha { get; }
    public double Dropout { get; }
    /// <summary>Module-name patterns (see <see cref="Targets"/>); default: every attention query and value.</summary>
    public IReadOnlyList<string> TargetModules { get; }
    public double? LearningRate { get; }
    public double? WeightDecay { get; }
    public string Method => "lora";
    public double Scaling => Alpha / Rank;

    public static readonly string[] DefaultTargets = { "query", "value" };

    public LoraConfig(int rank = 8, double alpha = 16, double dropout = 0.0, IReadOnlyList<string>? targetModules = null,
        double? learningRate = null, double? weightDecay = null)
    {
        if (rank < 1) throw new ArgumentOutOfRangeException(nameof(rank), rank, "LoRA rank must be at least 1");
        if (!(alpha > 0)) throw new ArgumentOutOfRangeException(nameof(alpha), alpha, "lora_alpha must be positive");
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "LoRA dropout must be in [0, 1)");
        if (learningRate is { } lr && !(lr > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), lr, "learning rate must be positive");
        if (weightDecay is { } wd && !(wd >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), wd, "weight decay must be non-negative");
        Rank = rank; Alpha = alpha; Dropout = dropout;
        TargetModules = targetModules is { Count: > 0 } ? targetModules.ToArray() : DefaultTargets;
        LearningRate = learningRate; WeightDecay = weightDecay;
    }

    public static MethodDefinition Definition { get; } = new("lora", o => FromJson(o), LoraLayer.ModuleNames, ConflictsWith: new[] { "dora" },
        TargetTensorSuffix: "lora_A.weight", NotMergedNote: null);

    public IAttachedMethod Attach(AttachTarget target) => new LoraMethod(this, this, target, (linear, c) => new LoraLayer(linear, c));

    public IMethodConfig WithTargets(IReadOnlyList<string> modulePaths) => new LoraConfig(Rank, Alpha, Dropout, modulePaths, LearningRate, WeightDecay);

    public JsonObject? PeftFields(IReadOnlyList<string> peftTargetModules) => new()
    {
        ["peft_type"] = "LORA", ["r"] = Rank, ["lora_alpha"] = Alpha, ["lora_dropout"] = Dropout,
        ["target_modules"] = ConfigJson.Array(peftTargetModules), ["bias"] = "none", ["fan_in_fan_out"] = false,
        ["use_rslora"] = false, ["use_dora"] = false, ["init_lora_weights"] = true, ["layers_to_transform"] = null,
        ["layers_pattern"] = null, ["rank_pattern"] = new JsonObject(), ["alpha_pattern"] = new JsonObject(),
    };

    public JsonObject ToJson() => new()
    {
        ["r"] = Rank, ["lora_alpha"] = Alpha, ["lora_dropout"] = Dropout,
        ["target_modules"] = ConfigJson.Array(TargetModules), ["lr"] = LearningRate, ["weight_decay"] = WeightDecay,
    };

    public static LoraConfig FromJson(JsonObject o, string method = "lora") => new(
        ConfigJson.Int(o, "r", method) ?? 8, ConfigJson.Double(o, "lora_alpha", method) ?? 16,
        ConfigJson.Double(o, "lora_dropout", method) ?? 0, ConfigJson.Strings(o, "target_modules", method),
        ConfigJson.Double(o, "lr", method), ConfigJson.Double(o, "weight_decay", method));
}
