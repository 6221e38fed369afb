using CoeffTune.Models;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Vpt;

/// <summary>The prompts of every layer, (L, P, D), state-dict key "vpt.prompts"; a <see cref="LayerTokenSource"/>.</summary>
public sealed class DeepPrompts : LayerTokenSource
{
    public readonly Parameter prompts;
    private readonly double dropout;

    public DeepPrompts(int layers, int tokens, int width, double dropout, ScalarType? dtype = null, Device? device = null) : base(nameof(DeepPrompts))
    {
        double bound = Math.Sqrt(6.0 / (width + width));
        prompts = new Parameter(empty(new long[] { layers, tokens, width }, dtype, device).uniform_(-bound, bound));
        this.dropout = dropout;
        RegisterComponents();
    }

    public override Tensor? Tokens(int layer, Tensor x)
    {
        if (layer < 0 || layer >= prompts.shape[0])
            throw new ArgumentOutOfRangeException(nameof(layer), layer, $"the prompts are for {prompts.shape[0]} layers");
        var p = prompts[layer].unsqueeze(0).expand(x.shape[0], -1, -1);
        return training && dropout > 0 ? nn.functional.dropout(p, dropout, training: true) : p;
    }
}

/// <summary>VPT-Deep attached to a classifier through its token-insertion point.</summary>
public sealed class VptMethod : IAttachedMethod
{
    public const string ModuleName = "vpt";

    public IMethodConfig Config { get; }
    public DeepPrompts Prompts { get; }
    public IReadOnlyList<string> TrainableNames { get; }
    public IReadOnlyList<string> Targets { get; } = Array.Empty<string>();
    public bool CanMerge => false;
    public bool Merged => false;

    public bool Enabled
    {
        get => Prompts.Enabled;
        set => Prompts.Enabled = value;
    }

    public VptMethod(VptConfig config, AttachTarget target)
    {
        Config = config;
        if (target.Model is not TransformerClassifier model)
            throw new ArgumentException($"vpt: prompts are inserted through a classifier's token-insertion point; a {target.Model.GetType().Name} has none");
        if (model.LayerTokenSources.Any(s => s.Name == ModuleName))
            throw new InvalidOperationException("vpt: the model already has prompts; a model can be wrapped once");
        var w = model.parameters().First();
        Prompts = new DeepPrompts(model.LayerCount, config.Tokens, model.Width, config.Dropout, w.dtype, w.device);
        model.AttachLayerTokens(Prompts, ModuleName);
        TrainableNames = new[] { $"{ModuleName}.prompts" };
    }

    public void Merge() { }
    public void Unmerge() { }
}
