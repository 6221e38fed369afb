using CoeffTune.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CoeffTune.Models.Dit;

/// <summary>Shape of a text-conditioned diffusion transformer (DiT with cross-attention to text token states).</summary>
public sealed record DitConfig
{
    public int ImageSize { get; init; } = 28;
    public int PatchSize { get; init; } = 4;
    public int Channels { get; init; } = 1;
    public int Dim { get; init; } = 128;
    public int Depth { get; init; } = 4;
    public int Heads { get; init; } = 4;
    public int MlpDim { get; init; } = 512;
    /// <summary>Width of the text encoder's token states (all-MiniLM-L6-v2: 384).</summary>
    public int ContextDim { get; init; } = 384;
    /// <summary>Width of the sinusoidal timestep features before the timestep MLP.</summary>
    public int FrequencyDim { get; init; } = 256;

    public int Grid => ImageSize / PatchSize;
    public int Patches => Grid * Grid;

    /// <summary>
    /// The model pretrained here on captioned Fashion-MNIST and MNIST: 28x28 grey, patch 4 (49 tokens), dim 128,
    /// depth 4, 4 heads of width 32, MLP 512, cross-attention to MiniLM's 384-wide token states (about 1.7M parameters).
    /// </summary>
    public static DitConfig Small28() => new();

    public DitConfig Validate()
    {
        if (ImageSize <= 0 || PatchSize <= 0 || ImageSize % PatchSize != 0)
            throw new ArgumentException($"image size {ImageSize} must be a positive multiple of patch size {PatchSize}");
        if (Heads <= 0 || Dim % Heads != 0) throw new ArgumentException($"dim {Dim} must be a multiple of heads {Heads}");
        if (Dim % 4 != 0) throw new ArgumentException($"dim {Dim} must be a multiple of 4 (2D sine-cosine positions)");
        if (Depth <= 0 || Channels <= 0 || MlpDim <= 0 || ContextDim <= 0)
            throw new ArgumentException("depth, channels, mlp dim and context dim must be positive");
        if (FrequencyDim <= 0 || FrequencyDim % 2 != 0) throw new ArgumentException($"frequency dim {FrequencyDim} must be positive and even");
        return this;
    }
}

/// <summary>
/// Timesteps to vectors: sinusoidal features (as in the Transformer's positions, DiT's <c>TimestepEmbedder</c>),
/// then a two-layer SiLU MLP.
/// </summary>
public sealed class TimestepEmbedder : Module<Tensor, Tensor>
{
    public readonly Linear fc1;
    public readonly Linear fc2;
    private readonly int frequencyDim;

    public TimestepEmbedder(int dim, int frequencyDim) : base(nameof(TimestepEmbedder))
    {
        this.frequencyDim = frequencyDim;
        fc1 = Linear(frequencyDim, dim);
        fc2 = Linear(dim, dim);
        RegisterComponents();
    }

    /// <summary>
    /// (B) timesteps (any numeric type) -> (B, frequencyDim): [cos(t w_0..w_{k-1}), sin(t w_0..w_{k-1})] with
    /// w_i = maxPeriod^(-i/k), k = frequencyDim / 2.
    /// </summary>
    public static Tensor Sinusoidal(Tensor t, int frequencyDim, double maxPeriod = 10_000)
    {
        using var scope = NewDisposeScope();
        int half = frequencyDim / 2;
        var freqs = exp(arange(half, ScalarType.Float32, t.device) * (-Math.Log(maxPeriod) / half));
        var args = t.to_type(ScalarType.Float32).unsqueeze(1) * freqs.unsqueeze(0);
        return cat(new[] { args.cos(), args.sin() }, 1).MoveToOuterDisposeScope();
    }

    public override Tensor forward(Tensor t)
    {
        using var scope = NewDisposeScope();
        var f = Sinusoidal(t, frequencyDim).to_type(fc1.weight!.dtype);
        return fc2.call(nn.functional.silu(fc1.call(f))).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// One DiT block with cross-attention (as PixArt-alpha adds it to DiT): adaLN-Zero self-attention,
/// cross-attention to the text token states, adaLN-Zero MLP.
/// <code>
/// shift1, scale1, gate1, shift2, scale2, gate2 = adaLN_modulation(SiLU(c))
/// x = x + gate1 * attn(norm1(x) * (1 + scale1) + shift1)
/// x = x + cross_attn(norm2(x), text)
/// x = x + gate2 * mlp(norm3(x) * (1 + scale2) + shift2)
/// </code>
/// The modulation is zero-initialised, so the gated branches start closed and the block starts as the identity
/// plus its cross-attention. Both attentions are <see cref="MultiHeadAttention"/>, so methods that change maps
/// (Coeff-Tuning) reach self- and cross-attention alike, chosen by the patterns "attn" and "cross_attn".
/// </summary>
public sealed class DitBlock : nn.Module
{
    public readonly LayerNorm norm1;
    public readonly MultiHeadAttention attn;
    public readonly LayerNorm norm2;
    public readonly MultiHeadAttention cross_attn;
    public readonly LayerNorm norm3;
    public readonly Mlp mlp;
    public readonly Linear adaLN_modulation;

    public DitBlock(DitConfig c) : base(nameof(DitBlock))
    {
        norm1 = LayerNorm(c.Dim, 1e-6, elementwise_affine: false);
        attn = new MultiHeadAttention(c.Dim, c.Heads);
        norm2 = LayerNorm(c.Dim, 1e-6);
        // Keys and values come from the projected text states (width Dim), see DiffusionTransformer.context_proj.
        cross_attn = new MultiHeadAttention(c.Dim, c.Heads);
        norm3 = LayerNorm(c.Dim, 1e-6, elementwise_affine: false);
        mlp = new Mlp(c.Dim, c.MlpDim);
        adaLN_modulation = Linear(c.Dim, 6 * c.Dim);
        using (no_grad())
        {
            adaLN_modulation.weight!.zero_();
            adaLN_modulation.bias!.zero_();
        }
        RegisterComponents();
    }

    /// <summary>x: (B, N, D) image tokens; condition: (B, D), timestep and pooled text; context: (B, L, D); contextMask: (B, L).</summary>
    public Tensor forward(Tensor x, Tensor condition, Tensor context, Tensor? contextMask)
    {
        using var scope = NewDisposeScope();
        var m = adaLN_modulation.call(nn.functional.silu(condition)).unsqueeze(1).chunk(6, -1);
        x = x + m[2] * attn.forward(Modulate(norm1.call(x), m[0], m[1]));
        x = x + cross_attn.forward(norm2.call(x), context, contextMask);
        x = x + m[5] * mlp.call(Modulate(norm3.call(x), m[3], m[4]));
        return x.MoveToOuterDisposeScope();
    }

    internal static Tensor Modulate(Tensor x, Tensor shift, Tensor scale) => x * (scale + 1) + shift;
}

/// <summary>The last layer: adaLN (zero-initialised), then a zero-initialised projection of every token to its patch's pixels.</summary>
public sealed class DitFinalLayer : nn.Module
{
    public readonly LayerNorm norm_final;
    public readonly Linear linear;
    public readonly Linear adaLN_modulation;

    public DitFinalLayer(DitConfig c) : base(nameof(DitFinalLayer))
    {
        norm_final = LayerNorm(c.Dim, 1e-6, elementwise_affine: false);
        linear = Linear(c.Dim, c.PatchSize * c.PatchSize * c.Channels);
        adaLN_modulation = Linear(c.Dim, 2 * c.Dim);
        using (no_grad())
        {
            foreach (var l in new[] { linear, adaLN_modulation }) { l.weight!.zero_(); l.bias!.zero_(); }
        }
        RegisterComponents();
    }

    public Tensor forward(Tensor x, Tensor condition)
    {
        using var scope = NewDisposeScope();
        var m = adaLN_modulation.call(nn.functional.silu(condition)).unsqueeze(1).chunk(2, -1);
        return linear.call(DitBlock.Modulate(norm_final.call(x), m[0], m[1])).MoveToOuterDisposeScope();
    }
}

/// <summary>
/// A text-conditioned diffusion transformer (Peebles and Xie's DiT, with cross-attention to text as in PixArt-alpha)
/// predicting the noise epsilon of a noised image. Field names follow DiT's <c>models.py</c>: x_embedder (patchify),
/// pos_embed (fixed 2D sine-cosine at start, then a parameter like any other), t_embedder, blocks.{i}, final_layer;
/// the text side adds context_proj (token states to the model width, the keys' and values' source of every
/// cross-attention) and text_pool_proj (mean-pooled text states added to the timestep embedding, as SDXL adds its
/// pooled text embedding). The text encoder itself is not part of the model: it stays frozen outside it.
/// </summary>
public sealed class DiffusionTransformer : nn.Module
{
    public readonly Conv2d x_embedder;
    public readonly Parameter pos_embed;
    public readonly TimestepEmbedder t_embedder;
    public readonly Linear context_proj;
    public readonly Linear text_pool_proj;
    public readonly ModuleList<DitBlock> blocks;
    public readonly DitFinalLayer final_layer;

    public DitConfig Config { get; }

    /// <summary>The model family tag adapters of this model carry.</summary>
    public const string Architecture = "dit";

    public DiffusionTransformer(DitConfig config) : base(nameof(DiffusionTransformer))
    {
        Config = config.Validate();
        x_embedder = Conv2d(config.Channels, config.Dim, config.PatchSize, stride: config.PatchSize);
        pos_embed = new Parameter(SinCosPositions(config.Dim, config.Grid).unsqueeze(0));
        t_embedder = new TimestepEmbedder(config.Dim, config.FrequencyDim);
        context_proj = Linear(config.ContextDim, config.Dim);
        text_pool_proj = Linear(config.ContextDim, config.Dim);
        blocks = new ModuleList<DitBlock>(Enumerable.Range(0, config.Depth).Select(_ => new DitBlock(config)).ToArray());
        final_layer = new DitFinalLayer(config);
        RegisterComponents();
    }

    /// <summary>
    /// The predicted noise, (B, C, H, W). x: noised images (B, C, H, W); t: timesteps (B); context: text token
    /// states (B, L, ContextDim); contextMask: (B, L), nonzero on real tokens (null: all real).
    /// </summary>
    public Tensor forward(Tensor x, Tensor t, Tensor context, Tensor? contextMask = null)
    {
        if (x.dim() != 4 || x.shape[1] != Config.Channels || x.shape[2] != Config.ImageSize || x.shape[3] != Config.ImageSize)
            throw new ArgumentException($"expected images (B, {Config.Channels}, {Config.ImageSize}, {Config.ImageSize}), got [{string.Join(", ", x.shape)}]");
        if (context.dim() != 3 || context.shape[0] != x.shape[0] || context.shape[2] != Config.ContextDim)
            throw new ArgumentException($"expected text states ({x.shape[0]}, L, {Config.ContextDim}), got [{string.Join(", ", context.shape)}]");
        using var scope = NewDisposeScope();
        var tokens = x_embedder.call(x).flatten(2).transpose(1, 2) + pos_embed;
        var condition = t_embedder.call(t) + text_pool_proj.call(MeanPool(context, contextMask));
        var text = context_proj.call(context);
        foreach (var block in blocks) tokens = block.forward(tokens, condition, text, contextMask);
        return Unpatchify(final_layer.forward(tokens, condition)).MoveToOuterDisposeScope();
    }

    /// <summary>Mean of the token states over real tokens, (B, L, D) -> (B, D).</summary>
    public static Tensor MeanPool(Tensor states, Tensor? mask)
    {
        if (mask is null) return states.mean(new long[] { 1 });
        using var scope = NewDisposeScope();
        var w = mask.to_type(states.dtype).unsqueeze(-1);
        return ((states * w).sum(1) / w.sum(1).clamp_min(1)).MoveToOuterDisposeScope();
    }

    private Tensor Unpatchify(Tensor x) => Unpatchify(x, Config);

    /// <summary>(B, N, p*p*C) -> (B, C, H, W): token (row, column) holds its patch's pixels in (y, x, channel) order, as DiT's unpatchify reads them.</summary>
    public static Tensor Unpatchify(Tensor x, DitConfig config)
    {
        int p = config.PatchSize, g = config.Grid, c = config.Channels;
        return x.reshape(x.shape[0], g, g, p, p, c).permute(0, 5, 1, 3, 2, 4).reshape(x.shape[0], c, g * p, g * p);
    }

    /// <summary>The inverse of <see cref="Unpatchify(Tensor, DitConfig)"/>: (B, C, H, W) -> (B, N, p*p*C).</summary>
    public static Tensor Patchify(Tensor images, DitConfig config)
    {
        int p = config.PatchSize, g = config.Grid, c = config.Channels;
        return images.reshape(images.shape[0], c, g, p, g, p).permute(0, 2, 4, 3, 5, 1).reshape(images.shape[0], g * g, p * p * c);
    }

    /// <summary>DiT's fixed 2D sine-cosine positions, (grid*grid, dim): half the width encodes the row, half the column.</summary>
    public static Tensor SinCosPositions(int dim, int grid)
    {
        var table = new float[grid * grid * dim];
        int quarter = dim / 4;
        for (int r = 0; r < grid; r++)
            for (int col = 0; col < grid; col++)
            {
                int token = r * grid + col;
                // As DiT's get_2d_sincos_pos_embed: the first half from the column (w), the second from the row (h).
                for (int half = 0; half < 2; half++)
                {
                    double pos = half == 0 ? col : r;
                    for (int i = 0; i < quarter; i++)
                    {
                        double omega = 1.0 / Math.Pow(10_000, (double)i / quarter);
                        table[token * dim + half * (dim / 2) + i] = (float)Math.Sin(pos * omega);
                        table[token * dim + half * (dim / 2) + quarter + i] = (float)Math.Cos(pos * omega);
                    }
                }
            }
        return tensor(table, new long[] { grid * grid, dim });
    }
}
