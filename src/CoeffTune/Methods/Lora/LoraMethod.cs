using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Lora;

/// <summary>LoRA (or DoRA, by the layer it makes) attached to every Linear its targets match, the modules to save excluded.</summary>
public sealed class LoraMethod : IAttachedMethod
{
    private readonly Dictionary<string, LoraLayer> layers = new();
    private readonly List<string> trainable = new();
    private bool enabled = true;

    public IMethodConfig Config { get; }
    public IReadOnlyList<string> TrainableNames => trainable;
    public IReadOnlyList<string> Targets => layers.Keys.ToList();
    /// <summary>The wrapped layers by module path.</summary>
    public IReadOnlyDictionary<string, LoraLayer> Layers => layers;
    public bool CanMerge => true;
    public bool Merged => layers.Count > 0 && layers.Values.First().Merged;

    public LoraMethod(IMethodConfig config, LoraConfig lora, AttachTarget target, Func<Linear, LoraConfig, LoraLayer> makeLayer)
    {
        Config = config;
        foreach (var (path, linear) in Methods.Targets.Select<Linear>(target, lora.TargetModules, config.Method))
        {
            if (linear.named_children().Any(c => c.name == "lora_A"))
                throw new InvalidOperationException($"{config.Method}: '{path}' already has LoRA or DoRA; a layer can be wrapped once");
            var layer = makeLayer(linear, lora);
            layers[path] = layer;
            trainable.AddRange(layer.ParameterNames.Select(n => $"{path}.{n}"));
        }
    }

    /// <summary>The layer at <paramref name="path"/>, naming the wrapped paths when there is none.</summary>
    public LoraLayer Layer(string path) => layers.TryGetValue(path, out var l) ? l
        : throw new KeyNotFoundException($"{Config.Method}: no wrapped layer '{path}'; wrapped: {string.Join(", ", layers.Keys.Take(6))}{(layers.Count > 6 ? ", ..." : "")}");

    /// <summary>Sets the factors of the layer at <paramref name="path"/>: A (r, in) and B (out, r), e.g. weights trained elsewhere.</summary>
    public void SetFactors(string path, Tensor a, Tensor b) => Layer(path).SetFactors(a, b);

    public bool Enabled
    {
        get => enabled;
        set { enabled = value; foreach (var l in layers.Values) l.Enabled = value; }
    }

    public void Merge() { foreach (var l in layers.Values) l.Merge(); }
    public void Unmerge() { foreach (var l in layers.Values) l.Unmerge(); }
}
