using System.Text.Json.Nodes;
using CoeffTune.Methods.Lora;

namespace CoeffTune.Methods.Dora;

/// <summary>DoRA (Liu et al. 2024): LoRA's direction update with a learned magnitude per output feature.</summary>
public sealed record DoraConfig(LoraConfig Lora) : IMethodConfig
{
    public DoraConfig() : this(new LoraConfig()) { }
    public string Method => "dora";
    public double? LearningRate => Lora.LearningRate;
    public double? WeightDecay => Lora.WeightDecay;

    public static MethodDefinition Definition { get; } = new("dora", FromJson, LoraLayer.ModuleNames, ConflictsWith: new[] { "lora" },
        TargetTensorSuffix: "lora_A.weight", NotMergedNote: null);

    public IAttachedMethod Attach(AttachTarget target) => new LoraMethod(this, Lora, target, (linear, c) => new DoraLayer(linear, c));
    public IMethodConfig WithTargets(IReadOnlyList<string> modulePaths) => new DoraConfig((LoraConfig)Lora.WithTargets(modulePaths));
    public JsonObject ToJson() { var o = Lora.ToJson(); o["use_dora"] = true; return o; }
    public JsonObject? PeftFields(IReadOnlyList<string> peftTargetModules) { var o = Lora.PeftFields(peftTargetModules)!; o["use_dora"] = true; return o; }
    public static DoraConfig FromJson(JsonObject o) => new(LoraConfig.FromJson(o, "dora"));
}
