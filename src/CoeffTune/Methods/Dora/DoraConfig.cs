using System.Text.Json.Nodes;
using CoeffTune.Methods.Lora;
using CoeffTune.Models;

namespace CoeffTune.Methods.Dora;

/// <summary>DoRA (Liu et al. 2024): LoRA's direction update with a learned magnitude per output feature.</summary>
public sealed record DoraConfig(LoraConfig Lora) : IMethodConfig
{
    public DoraConfig() : this(new LoraConfig()) { }
    public string Method => "dora";
    public double? LearningRate => Lora.LearningRate;
    public double? WeightDecay => Lora.WeightDecay;
    public IAttachedMethod Attach(TransformerClassifier model) => new LoraMethod(this, model, dora: true);
    public JsonObject ToJson() { var o = Lora.ToJson(); o["use_dora"] = true; return o; }
    public static DoraConfig FromJson(JsonObject o) => new(LoraConfig.FromJson(o, "dora"));
}
