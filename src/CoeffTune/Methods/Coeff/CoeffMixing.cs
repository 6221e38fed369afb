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

    /// <summary>Sets alpha from an (H, H) tensor (any device and floating dtype); the parameterization decides what it means.</summary>
    public void SetAlpha(Tensor value)
    {
        if (!value.shape.SequenceEqual(new long[] { Heads, Heads }))
            throw new ArgumentException($"alpha must be {Heads} x {Heads}, got [{string.Join(", ", value.shape)}]");
        if (!value.is_floating_point() || !value.isfinite().all().ToBoolean())
            throw new ArgumentException("alpha must hold finite floating-point values");
        using (no_grad()) alpha.copy_(value.to(alpha.dtype).to(alpha.device));
    }

    /// <summary>alpha' for the current mode: I + Dropout(alpha) (training) or I + alpha (evaluation).</summary>
    public Tensor MixingMatrix()
    {
        var a = training && Config.Dropout > 0 ? nn.functional.dropout(alpha, Config.Dropout, training: true) : (Tensor)alpha;
        return Config.Parameterization == AlphaParameterization.Residual ? a + identity : a.alias();
    }

    /// <summary>
    /// When true (the default), the maps, their mixing and the product with V are one autograd node
    /// (<see cref="RecomputedMixedAttention"/>) that keeps q, k, v and alpha' and recomputes the maps in
    /// the backward pass. When false, autograd stores the maps and the mixed maps of every layer: at most
    /// a few percent faster per step on a CPU, but two (B, H, Nq, Nk) tensors per layer more memory
    /// (`bench cost`, ViT-B/16 shape, coeff+lora over lora: 1.78 s and +363 MiB stored against 1.78 s and
    /// +108 MiB recomputed).
    /// </summary>
    public bool RecomputeMaps { get; set; } = true;

    /// <summary>
    /// With <see cref="RecomputeMaps"/>: the bytes one query tile's maps (B, H, T, Nk) may take, so the maps, their mixing
    /// and their product with V run tile by tile (<see cref="TiledMixedAttention"/>) and no full (B, H, Nq, Nk) tensor is
    /// made; 0 makes the maps of all queries at once. Exact either way: tiling changes which rows are computed together,
    /// not what is computed.
    /// </summary>
    public long TileBytes
    {
        get => tileBytes;
        set => tileBytes = value >= 0 ? value : throw new ArgumentOutOfRangeException(nameof(TileBytes), value, "tile bytes must be 0 (no tiling) or positive");
    }
    private long tileBytes = DefaultTileBytes;

    /// <summary>The default <see cref="TileBytes"/>.</summary>
    public const long DefaultTileBytes = 1 << 22;

    /// <summary>maps: (B, H, Nq, Nk) -> (B, H, Nq, Nk), mixed over heads with one batched matmul.</summary>
    public override Tensor forward(Tensor maps)
    {
        CheckHeads(maps.shape[1]);
        using var scope = NewDisposeScope();
        // (H, H) @ (B, H, Nq*Nk): one GEMM per batch element over the flattened maps.
        return RecomputedMixedAttention.Mix(MixingMatrix().to_type(maps.dtype), maps).MoveToOuterDisposeScope();
    }

    public override Tensor? Attend(Tensor q, Tensor k, Tensor v, Tensor? additiveMask)
    {
        if (!RecomputeMaps) return null;
        CheckHeads(q.shape[1]);
        using var scope = NewDisposeScope();
        var mix = MixingMatrix().to_type(q.dtype);
        long rows = TileBytes == 0 ? q.shape[2] : TiledMixedAttention.TileRows(q.shape[0], q.shape[1], k.shape[2], q.element_size(), TileBytes);
        var output = rows >= q.shape[2]
            ? RecomputedMixedAttention.apply(mix, q, k, v, additiveMask!)
            : TiledMixedAttention.apply(mix, q, k, v, additiveMask!, rows);
        return output.MoveToOuterDisposeScope();
    }

    /// <summary>The head mixing: an (H, H) by (H, Nq Nk) product, 2 H^2 Nq Nk per example.</summary>
    public override double ForwardFlops(long heads, long queries, long keys) => 2.0 * heads * heads * queries * keys;

    /// <summary>d alpha' = sum dFhat F^T and dF = alpha'^T dFhat: one (H, H) by (H, Nq Nk) product each, when needed.</summary>
    public override double BackwardFlops(long heads, long queries, long keys, bool mapsNeedGrad) =>
        ((alpha.requires_grad ? 1 : 0) + (mapsNeedGrad ? 1 : 0)) * 2.0 * heads * heads * queries * keys;

    public override bool RecomputesInBackward => RecomputeMaps;

    private void CheckHeads(long heads)
    {
        if (heads != Heads) throw new ArgumentException($"maps have {heads} heads, alpha is {Heads} x {Heads}");
    }
}
