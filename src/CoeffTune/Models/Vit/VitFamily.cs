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
        PeftTaskType: null, new Dictionary<string, string>());
}
