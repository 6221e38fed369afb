using CoeffTune.Methods.Dora;
using CoeffTune.Models;
using TorchSharp.Modules;

namespace CoeffTune.Methods.Lora;

/// <summary>LoRA (or DoRA) attached to every Linear its targets match, the head excluded.</summary>
public sealed class LoraMethod : IAttachedMethod
{
    private readonly List<LoraLayer> layers = new();
    private readonly List<string> trainable = new();
    private readonly List<string> targets = new();
    private bool enabled = true;

    public IMethodConfig Config { get; }
    public IReadOnlyList<string> TrainableNames => trainable;
    public IReadOnlyList<string> Targets => targets;
    public bool CanMerge => true;
    public bool Merged => layers.Count > 0 && layers[0].Merged;

    public LoraMethod(IMethodConfig config, TransformerClassifier model, bool dora)
    {
        Config = config;
        var lora = config is DoraConfig d ? d.Lora : (LoraConfig)config;
        foreach (var (path, linear) in Methods.Targets.Select<Linear>(model, lora.TargetModules, config.Method, exclude: model.HeadName))
        {
            if (linear.named_children().Any(c => c.name == "lora_A"))
                throw new InvalidOperationException($"{config.Method}: '{path}' already has LoRA or DoRA; a layer can be wrapped once");
            layers.Add(dora ? new DoraLayer(linear, lora) : new LoraLayer(linear, lora));
            targets.Add(path);
            trainable.Add($"{path}.lora_A.weight");
            trainable.Add($"{path}.lora_B.weight");
            if (dora) trainable.Add($"{path}.{DoraLayer.MagnitudeName}");
        }
    }

    public bool Enabled
    {
        get => enabled;
        set { enabled = value; foreach (var l in layers) l.Enabled = value; }
    }

    public void Merge() { foreach (var l in layers) l.Merge(); }
    public void Unmerge() { foreach (var l in layers) l.Unmerge(); }
}
