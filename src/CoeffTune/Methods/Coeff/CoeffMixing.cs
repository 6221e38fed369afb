using CoeffTune.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace CoeffTune.Methods.Coeff;

/// <summary>
/// Coeff-Tuning for one attention layer: an H x H matrix alpha that recombines the layer's
/// post-softmax maps, Fhat^h = sum_i alpha'[h, i] F^i (paper Eq. 6-7). The mixed maps may have
/// negative entries and rows that do not sum to one, so outputs can leave the convex hull of the values.
/// </summary>
public sealed class CoeffMixing : AttentionMapTransform
{
    /// <summary>The trainable coefficients; state-dict key "alpha".</summary>
    public readonly Parameter alpha;
    private readonly Tensor identity;
    public CoeffConfig Config { get; }
    public int Heads { get; }

    public CoeffMixing(int heads, CoeffConfig config) : base(nameof(CoeffMixing))
    {
        Heads = heads;
        Config = config;
        var init = config.Parameterization switch
        {
            AlphaParameterization.Residual => zeros(heads, heads),
            AlphaParameterization.DirectIdentity => eye(heads),
            AlphaParameterization.DirectRandom => empty(heads, heads).uniform_(-1.0 / Math.Sqrt(heads), 1.0 / Math.Sqrt(heads)),
            _ => throw new ArgumentOutOfRangeException(nameof(config)),
        };
        alpha = new Parameter(init);
        identity = eye(heads);
        // A constant, not state: kept out of the state dict and of saved adapters.
        register_buffer("identity", identity, persistent: false);
        RegisterComponents();
    }

    /// <summary>alpha' for the current mode: I + Dropout(alpha) (training) or I + alpha (evaluation).</summary>
    public Tensor MixingMatrix()
    {
        var a = training && Config.Dropout > 0 ? nn.functional.dropout(alpha, Config.Dropout, training: true) : (Tensor)alpha;
        return Config.Parameterization == AlphaParameterization.Residual ? a + identity : a.alias();
    }

    /// <summary>
    /// When true, mixing and the product with V are one autograd node (<see cref="MixAndAttend"/>) that
    /// recomputes the mixed maps in the backward pass instead of storing them. Off by default: measured
    /// with `bench cost`, this node took more time and more step memory than letting autograd store the
    /// mixed maps (ViT-B/16 shape, coeff+lora: 1,145 vs 915 MiB, 1.91 vs 1.88 s), because the tensors a
    /// managed backward pass creates live until their handles are released, not when the engine is done.
    /// </summary>
    public bool RecomputeMixedMaps { get; set; }

    /// <summary>maps: (B, H, Nq, Nk) -> (B, H, Nq, Nk), mixed over heads with one batched matmul.</summary>
    public override Tensor forward(Tensor maps)
    {
        CheckHeads(maps);
        using var scope = NewDisposeScope();
        // (H, H) @ (B, H, Nq*Nk): one GEMM per batch element over the flattened maps.
        return MixAndAttend.Mix(MixingMatrix().to_type(maps.dtype), maps).MoveToOuterDisposeScope();
    }

    public override Tensor? TransformAndAttend(Tensor maps, Tensor values)
    {
        if (!RecomputeMixedMaps) return null;
        CheckHeads(maps);
        using var scope = NewDisposeScope();
        return MixAndAttend.apply(MixingMatrix().to_type(maps.dtype), maps, values).MoveToOuterDisposeScope();
    }

    private void CheckHeads(Tensor maps)
    {
        if (maps.shape[1] != Heads) throw new ArgumentException($"maps have {maps.shape[1]} heads, alpha is {Heads} x {Heads}");
    }
}
