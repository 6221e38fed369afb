using CoeffTune.Attention;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;

namespace CoeffTune.Models;

/// <summary>Shape of a Vision Transformer, from a 28x28 toy to ViT-B/16.</summary>
public sealed record VitConfig
{
    public int ImageSize { get; init; } = 224;
    public int PatchSize { get; init; } = 16;
    public int Channels { get; init; } = 3;
    public int Dim { get; init; } = 768;
    public int Depth { get; init; } = 12;
    public int Heads { get; init; } = 12;
    public int MlpDim { get; init; } = 3072;
    public int Classes { get; init; } = 1000;
    public double LayerNormEps { get; init; } = 1e-6;

    public int Patches => (ImageSize / PatchSize) * (ImageSize / PatchSize);

    public static VitConfig Base16(int classes = 1000) => new() { Classes = classes };

    /// <summary>
    /// The small ViT pretrained here on Fashion-MNIST: 28x28 grey, patch 4 (49 patches + class token),
    /// dim 64, depth 4, 8 heads of width 8. Eight heads rather than four because Coeff-Tuning acts across
    /// heads: with more maps per layer its test is closer to ViT-B's twelve.
    /// </summary>
    public static VitConfig Tiny28(int classes = 10) => new()
    { ImageSize = 28, PatchSize = 4, Channels = 1, Dim = 64, Depth = 4, Heads = 8, MlpDim = 128, Classes = classes };

    public VitConfig Validate()
    {
        if (ImageSize <= 0 || PatchSize <= 0 || ImageSize % PatchSize != 0)
            throw new ArgumentException($"image size {ImageSize} must be a positive multiple of patch size {PatchSize}");
        if (Heads <= 0 || Dim % Heads != 0) throw new ArgumentException($"dim {Dim} must be a multiple of heads {Heads}");
        if (Depth <= 0 || Classes <= 0 || Channels <= 0 || MlpDim <= 0)
            throw new ArgumentException("depth, classes, channels and mlp dim must be positive");
        return this;
    }
}

/// <summary>Splits an image into non-overlapping patches and projects each to the model width.</summary>
public sealed class PatchEmbedding : Module<Tensor, Tensor>
{
    public readonly Conv2d proj;

    public PatchEmbedding(VitConfig c) : base(nameof(PatchEmbedding))
    {
        proj = Conv2d(c.Channels, c.Dim, c.PatchSize, stride: c.PatchSize);
        RegisterComponents();
    }

    /// <summary>(B, C, H, W) -> (B, patches, D).</summary>
    public override Tensor forward(Tensor x) => proj.call(x).flatten(2).transpose(1, 2);
}

/// <summary>Two-layer GELU MLP of a transformer block.</summary>
public sealed class Mlp : Module<Tensor, Tensor>
{
    public readonly Linear fc1;
    public readonly Linear fc2;

    public Mlp(int dim, int hidden) : base(nameof(Mlp))
    {
        fc1 = Linear(dim, hidden);
        fc2 = Linear(hidden, dim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var h = nn.functional.gelu(fc1.call(x));
        return fc2.call(h);
    }
}

/// <summary>Pre-LN transformer block: x + attn(norm1(x)), then x + mlp(norm2(x)).</summary>
public sealed class VitBlock : Module<Tensor, Tensor>
{
    public readonly LayerNorm norm1;
    public readonly MultiHeadAttention attn;
    public readonly LayerNorm norm2;
    public readonly Mlp mlp;

    public VitBlock(VitConfig c) : base(nameof(VitBlock))
    {
        norm1 = LayerNorm(c.Dim, c.LayerNormEps);
        attn = new MultiHeadAttention(c.Dim, c.Heads);
        norm2 = LayerNorm(c.Dim, c.LayerNormEps);
        mlp = new Mlp(c.Dim, c.MlpDim);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = x + attn.forward(norm1.call(x));
        x = x + mlp.call(norm2.call(x));
        return x.MoveToOuterDisposeScope();
    }
}

/// <summary>
/// Vision Transformer (Dosovitskiy et al.) with timm's field names: patch_embed.proj, cls_token,
/// pos_embed, blocks.{i}.{norm1,attn,norm2,mlp.fc1,mlp.fc2}, norm, head. Attention runs through
/// <see cref="MultiHeadAttention"/> (attn.query/key/value/output); the checkpoint converters split
/// timm's fused qkv and rename Hugging Face's keys.
/// </summary>
public sealed class VisionTransformer : TransformerClassifier
{
    public readonly PatchEmbedding patch_embed;
    public readonly Parameter cls_token;
    public readonly Parameter pos_embed;
    public readonly ModuleList<VitBlock> blocks;
    public readonly LayerNorm norm;
    public readonly Linear head;

    public VitConfig Config { get; }
    public override string HeadName => "head";
    public override Linear Head => head;
    public override string Architecture => "vit";
    public override long SequenceLength(Batch batch) => Config.Patches + 1;
    public override int LayerCount => blocks.Count;
    public override int Width => Config.Dim;

    public VisionTransformer(VitConfig config) : base(nameof(VisionTransformer))
    {
        Config = config.Validate();
        patch_embed = new PatchEmbedding(config);
        cls_token = new Parameter(zeros(1, 1, config.Dim));
        pos_embed = new Parameter(randn(1, config.Patches + 1, config.Dim) * 0.02);
        blocks = new ModuleList<VitBlock>(Enumerable.Range(0, config.Depth).Select(_ => new VitBlock(config)).ToArray());
        norm = LayerNorm(config.Dim, config.LayerNormEps);
        head = Linear(config.Dim, config.Classes);
        RegisterComponents();
        BaseParameterCount = parameters().Sum(p => p.numel());
    }

    public override Tensor Features(Batch batch)
    {
        using var scope = NewDisposeScope();
        var x = patch_embed.call(batch.Inputs);
        var cls = cls_token.expand(x.shape[0], -1, -1);
        x = cat(new[] { cls, x }, 1) + pos_embed;
        for (int i = 0; i < blocks.Count; i++)
        {
            var block = blocks[i];
            x = RunLayer(i, x, null, (h, _) => block.call(h));
        }
        return norm.call(x).select(1, 0).MoveToOuterDisposeScope();
    }

    /// <summary>The last layer's normalised patch tokens (B, patches, dim) of images (B, C, H, W), the class token left out: what a vision–language model reads.</summary>
    public Tensor PatchTokens(Tensor images)
    {
        using var scope = NewDisposeScope();
        var x = patch_embed.call(images);
        x = cat(new[] { cls_token.expand(x.shape[0], -1, -1), x }, 1) + pos_embed;
        foreach (var block in blocks) x = block.call(x);
        return norm.call(x).narrow(1, 1, Config.Patches).MoveToOuterDisposeScope();
    }
}
