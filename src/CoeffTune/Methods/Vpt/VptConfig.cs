using System.Text.Json.Nodes;

namespace CoeffTune.Methods.Vpt;

/// <summary>
/// VPT-Deep (Jia et al., "Visual Prompt Tuning", ECCV 2022): every transformer layer gets its own P learnable prompt
/// tokens, inserted after the class token at the layer's input and dropped from its output, so the next layer sees fresh
/// prompts and the model's features keep their length. It works through the models' token-insertion point
/// (<see cref="Models.LayerTokenSource"/>), so it applies to text models as well; there the key padding mask never masks
/// a prompt.
/// <para>With Coeff-Tuning: the attention maps of each layer are over the prompt and the real tokens together
/// ((N + P) x (N + P)), and alpha mixes those whole maps, prompt columns and rows included; nothing distinguishes a
/// prompt from a real token in the filter-subspace view.</para>
/// <para>Prompts start uniform in ±sqrt(6 / (D + D)) (Xavier-uniform over a D x D fan; VPT's own bound on ViT-B/16,
/// sqrt(6 / (3·16·16 + 768)), is the same number). A prompt changes every attention map, so a freshly wrapped model
/// does not compute what the base model did. Prompts cannot be merged into weights.</para>
/// </summary>
public sealed record VptConfig : IMethodConfig
{
    public int Tokens { get; }
    /// <summary>Dropout on the prompts, training only (VPT's default is 0).</summary>
    public double Dropout { get; }
    public double? LearningRate { get; }
    public double? WeightDecay { get; }
    public string Method => "vpt";

    public VptConfig(int tokens = 10, double dropout = 0.0, double? learningRate = null, double? weightDecay = null)
    {
        if (tokens < 1) throw new ArgumentOutOfRangeException(nameof(tokens), tokens, "VPT needs at least 1 prompt token per layer");
        if (!(dropout >= 0 && dropout < 1)) throw new ArgumentOutOfRangeException(nameof(dropout), dropout, "VPT prompt dropout must be in [0, 1)");
        if (learningRate is { } lr && !(lr > 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), lr, "learning rate must be positive");
        if (weightDecay is { } wd && !(wd >= 0)) throw new ArgumentOutOfRangeException(nameof(weightDecay), wd, "weight decay must be non-negative");
        Tokens = tokens; Dropout = dropout; LearningRate = learningRate; WeightDecay = weightDecay;
    }

    public static MethodDefinition Definition { get; } = new("vpt", FromJson, new[] { VptMethod.ModuleName }, ConflictsWith: Array.Empty<string>(),
        TargetTensorSuffix: null, NotMergedNote: "stays a runtime operation (prompt tokens, which no weight can express)");

    public IAttachedMethod Attach(AttachTarget target) => new VptMethod(this, target);

    public JsonObject ToJson() => new() { ["tokens"] = Tokens, ["dropout"] = Dropout, ["lr"] = LearningRate, ["weight_decay"] = WeightDecay };

    public static VptConfig FromJson(JsonObject o) => new(
        ConfigJson.Int(o, "tokens", "vpt") ?? 10, ConfigJson.Double(o, "dropout", "vpt") ?? 0.0,
        ConfigJson.Double(o, "lr", "vpt"), ConfigJson.Double(o, "weight_decay", "vpt"));
}
