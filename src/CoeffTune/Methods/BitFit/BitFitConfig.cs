using System.Text.Json.Nodes;

namespace CoeffTune.Methods.BitFit;

/// <summary>BitFit (Ben Zaken et al. 2022): train every bias of the backbone, nothing else.</summary>
public sealed record BitFitConfig(double? LearningRate = null, double? WeightDecay = null) : IMethodConfig
{
    public string Method => "bitfit";
    public static MethodDefinition Definition { get; } = new("bitfit", FromJson, Array.Empty<string>(), Array.Empty<string>(), null,
        NotMergedNote: FrozenSubsetMethod.NotMergedNote);
    public IAttachedMethod Attach(AttachTarget target) =>
        new FrozenSubsetMethod(this, target, name => name == "bias" || name.EndsWith(".bias"));
    public JsonObject ToJson() => new() { ["lr"] = LearningRate, ["weight_decay"] = WeightDecay };
    public static BitFitConfig FromJson(JsonObject o) => new(ConfigJson.Double(o, "lr", "bitfit"), ConfigJson.Double(o, "weight_decay", "bitfit"));
}
