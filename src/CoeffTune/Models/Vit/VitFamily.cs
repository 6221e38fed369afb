using CoeffTune.Assets;
using CoeffTune.Checkpoints;
using CoeffTune.Data;
using CoeffTune.Training;

namespace CoeffTune.Models;

/// <summary>The Vision Transformer family: <see cref="VisionTransformer"/> with its Hugging Face and timm names.</summary>
public static class VitFamily
{
    private static (string, string)[] HuggingFacePairs(string prefix) => new[]
    {
        ("patch_embed.proj", $"{prefix}embeddings.patch_embeddings.projection"),
        ("cls_token", $"{prefix}embeddings.cls_token"),
        ("pos_embed", $"{prefix}embeddings.position_embeddings"),
        ("blocks.{i}.norm1", $"{prefix}encoder.layer.{{i}}.layernorm_before"),
        ("blocks.{i}.attn.query", $"{prefix}encoder.layer.{{i}}.attention.attention.query"),
        ("blocks.{i}.attn.key", $"{prefix}encoder.layer.{{i}}.attention.attention.key"),
        ("blocks.{i}.attn.value", $"{prefix}encoder.layer.{{i}}.attention.attention.value"),
        ("blocks.{i}.attn.output", $"{prefix}encoder.layer.{{i}}.attention.output.dense"),
        // The maps are made in ViTSelfAttention: the attention module's own state (Coeff-Tuning's alpha) goes there.
        ("blocks.{i}.attn", $"{prefix}encoder.layer.{{i}}.attention.attention"),
        ("blocks.{i}.norm2", $"{prefix}encoder.layer.{{i}}.layernorm_after"),
        ("blocks.{i}.mlp.fc1", $"{prefix}encoder.layer.{{i}}.intermediate.dense"),
        ("blocks.{i}.mlp.fc2", $"{prefix}encoder.layer.{{i}}.output.dense"),
        ("blocks.{i}", $"{prefix}encoder.layer.{{i}}"),
        ("norm", $"{prefix}layernorm"),
        ("head", "classifier"),
    };

    public static ModelFamily Definition { get; } = new("vit",
        new[]
        {
            // ViTForImageClassification.
            new NameMap("huggingface", HuggingFacePairs("vit.")),
            // ViTModel, as a bare encoder's checkpoint names its tensors (no head).
            new NameMap("huggingface-base", HuggingFacePairs("")),
            // timm's VisionTransformer: the same names but attn.proj, and a fused attn.qkv (below).
            new NameMap("timm",
                ("patch_embed.proj", "patch_embed.proj"),
                ("cls_token", "cls_token"),
                ("pos_embed", "pos_embed"),
                ("blocks.{i}.attn.output", "blocks.{i}.attn.proj"),
                ("blocks.{i}.attn.query", "blocks.{i}.attn.query"),
                ("blocks.{i}.attn.key", "blocks.{i}.attn.key"),
                ("blocks.{i}.attn.value", "blocks.{i}.attn.value"),
                ("blocks.{i}.attn", "blocks.{i}.attn"),
                ("blocks.{i}.norm1", "blocks.{i}.norm1"),
                ("blocks.{i}.norm2", "blocks.{i}.norm2"),
                ("blocks.{i}.mlp.fc1", "blocks.{i}.mlp.fc1"),
                ("blocks.{i}.mlp.fc2", "blocks.{i}.mlp.fc2"),
                ("norm", "norm"),
                ("head", "head")),
        },
        new[] { new FusedProjection("blocks.{i}.attn.qkv", new[] { "blocks.{i}.attn.query", "blocks.{i}.attn.key", "blocks.{i}.attn.value" }) },
        PeftTaskType: null, new Dictionary<string, string>())
    {
        HeadModule = "head",
        Classifies = TaskKind.Image,
        LoadClassifier = Load,
    };

    /// <summary>
    /// The ViT pretrained here ("vit-fmnist", or a cache name such as "vit-fmnist-2000x1", pretrained on first use
    /// unless the request forbids it) or a ViT checkpoint file (timm or Hugging Face names; safetensors, .pth, ONNX).
    /// </summary>
    private static BaseModel Load(BaseModelRequest r)
    {
        VisionTransformer vit;
        if (PretrainOptions.FromCacheName(r.Name, r.Pretrain) is { } options)
        {
            // A name read from an adapter file must not start an expensive pretraining before the adapter is checked.
            if (!r.MayPretrain && !VitPretraining.IsCached(options, r.Cache))
                throw new InvalidDataException($"base model '{r.Name}' is not in the cache ({(r.Cache ?? AssetCache.Default).PathFor(options.CacheName)}); " +
                    "pretrain it first by training with that model, or name the base model explicitly");
            var p = VitPretraining.Ensure(options, r.Cache, r.Log);
            r.Log?.WriteLine($"ViT pretrained here on Fashion-MNIST ({options.CacheName}): test accuracy {p.TestAccuracy:P2}");
            vit = VitPretraining.Load(p, r.Classes);
        }
        else if (File.Exists(r.Name))
        {
            var (loaded, report) = VitCheckpoint.Load(r.Name, r.Classes, r.Heads);
            r.Log?.WriteLine(report.ToString());
            vit = loaded;
        }
        else throw new ArgumentException($"'{r.Name}' is neither a known model (auto, minilm, arctic-xs, vit-fmnist) nor an existing file", nameof(r.Name));
        return new BaseModel(vit, new VitInputs(vit.Config));
    }
}
