namespace CoeffTune.Models.Vit;

/// <summary>The Vision Transformer family: <see cref="VisionTransformer"/> with its Hugging Face and timm names.</summary>
public static class VitFamily
{
    public static ModelFamily Definition { get; } = new("vit",
        new[]
        {
            // ViTForImageClassification.
            new NameMap("huggingface",
                ("patch_embed.proj", "vit.embeddings.patch_embeddings.projection"),
                ("cls_token", "vit.embeddings.cls_token"),
                ("pos_embed", "vit.embeddings.position_embeddings"),
                ("blocks.{i}.norm1", "vit.encoder.layer.{i}.layernorm_before"),
                ("blocks.{i}.attn.query", "vit.encoder.layer.{i}.attention.attention.query"),
                ("blocks.{i}.attn.key", "vit.encoder.layer.{i}.attention.attention.key"),
                ("blocks.{i}.attn.value", "vit.encoder.layer.{i}.attention.attention.value"),
                ("blocks.{i}.attn.output", "vit.encoder.layer.{i}.attention.output.dense"),
                ("blocks.{i}.attn", "vit.encoder.layer.{i}.attention.attention"),
                ("blocks.{i}.norm2", "vit.encoder.layer.{i}.layernorm_after"),
                ("blocks.{i}.mlp.fc1", "vit.encoder.layer.{i}.intermediate.dense"),
                ("blocks.{i}.mlp.fc2", "vit.encoder.layer.{i}.output.dense"),
                ("blocks.{i}", "vit.encoder.layer.{i}"),
                ("norm", "vit.layernorm"),
                ("head", "classifier")),
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
