using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Ssf;

/// <summary>
/// SSF on every matched Linear or LayerNorm (the modules to save excluded): parameters "ssf_scale" and
/// "ssf_shift" registered on the module, applied by a forward hook. Mergeable: gamma and beta fold
/// into the module's own weight and bias.
/// </summary>
public sealed class SsfMethod : IAttachedMethod
{
    private readonly List<(nn.Module Module, Parameter Scale, Parameter Shift)> layers = new();
    private readonly List<string> trainable = new();
    private readonly List<string> targets = new();

    public IMethodConfig Config { get; }
    public IReadOnlyList<string> TrainableNames => trainable;
    public IReadOnlyList<string> Targets => targets;
    public bool Enabled { get; set; } = true;
    public bool CanMerge => true;
    public bool Merged { get; private set; }

    public SsfMethod(SsfConfig config, AttachTarget target)
    {
        Config = config;
        var matched = Methods.Targets.Select<nn.Module>(target, config.TargetModules, "ssf")
            .Where(m => m.Module is Linear or LayerNorm).ToList();
        if (matched.Count == 0)
            throw new ArgumentException($"ssf: targets {string.Join(", ", config.TargetModules)} match no Linear or LayerNorm");
        foreach (var (path, module) in matched)
        {
            if (module.named_parameters(recurse: false).Any(p => p.name == "ssf_scale"))
                throw new InvalidOperationException($"ssf: '{path}' already has SSF; a layer can be wrapped once");
            var w = module.named_parameters(recurse: false).First(p => p.name == "weight").parameter;
            long features = w.shape[0];
            var shape = new long[] { features };
            var s = new Parameter(config.RandomInit ? normal(1.0, 0.02, shape, w.dtype, w.device) : ones(shape, w.dtype, w.device));
            var b = new Parameter(config.RandomInit ? normal(0.0, 0.02, shape, w.dtype, w.device) : zeros(shape, w.dtype, w.device));
            module.register_parameter("ssf_scale", s);
            module.register_parameter("ssf_shift", b);
            layers.Add((module, s, b));
            ((nn.Module<Tensor, Tensor>)module).register_forward_hook((_, _, y) => Enabled && !Merged ? y * s + b : y);
            targets.Add(path);
            trainable.Add($"{path}.ssf_scale");
            trainable.Add($"{path}.ssf_shift");
        }
    }

    public void Merge()
    {
        if (Merged) return;
        using var scope = NewDisposeScope();
        using (no_grad())
            foreach (var (module, scale, shift) in layers)
            {
                var (w, bias) = WeightAndBias(module);
                w.mul_(w.dim() == 2 ? scale.unsqueeze(1) : scale);
                bias.mul_(scale).add_(shift);
            }
        Merged = true;
    }

    public void Unmerge()
    {
        if (!Merged) return;
        using var scope = NewDisposeScope();
        using (no_grad())
            foreach (var (module, scale, shift) in layers)
            {
                var (w, bias) = WeightAndBias(module);
                bias.sub_(shift).div_(scale);
                w.div_(w.dim() == 2 ? scale.unsqueeze(1) : scale);
            }
        Merged = false;
    }

    private static (Tensor Weight, Tensor Bias) WeightAndBias(nn.Module m)
    {
        var ps = m.named_parameters(recurse: false).ToDictionary(p => p.name, p => (Tensor)p.parameter);
        if (!ps.TryGetValue("bias", out var bias))
            throw new InvalidOperationException("ssf: merging needs a module with a bias");
        return (ps["weight"], bias);
    }
}
