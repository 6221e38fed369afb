using System.Text.RegularExpressions;
using CoeffTune.Models;
using TorchSharp;
using static TorchSharp.torch;

namespace CoeffTune.Tests.Checkpoints;

/// <summary>
/// Writes models of this library out under the names other libraries use, as this library believes they lay them
/// out: for testing renaming, error messages and round trips. Whether those beliefs match the real layouts is
/// checked against independently made checkpoints in <see cref="ReferenceCheckpointTests"/>.
/// </summary>
internal static class CheckpointTestFiles
{
    public static string TempDir()
    {
        var dir = Path.Combine(Path.GetTempPath(), "coefftune-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return dir;
    }

    /// <summary>Every parameter random (LayerNorm and cls_token too), so a misplaced tensor shows in the outputs.</summary>
    public static void Randomize(nn.Module model, int seed)
    {
        var g = new Generator((ulong)seed);
        using var _ = no_grad();
        foreach (var (_, p) in model.named_parameters()) p.copy_(randn(p.shape, generator: g) * 0.1 + (p.dim() == 1 ? 0.5 : 0));
    }

    /// <summary>Hugging Face BertModel names ("bert." prefix as in BertForSequenceClassification).</summary>
    public static Dictionary<string, Tensor> BertToHuggingFace(BertClassifier model)
    {
        (string, string)[] map =
        {
            (@"^embeddings\.norm\.", "embeddings.LayerNorm."),
            (@"^layers\.(\d+)\.attention\.(query|key|value)\.", "encoder.layer.$1.attention.self.$2."),
            (@"^layers\.(\d+)\.attention\.output\.", "encoder.layer.$1.attention.output.dense."),
            (@"^layers\.(\d+)\.attention_norm\.", "encoder.layer.$1.attention.output.LayerNorm."),
            (@"^layers\.(\d+)\.intermediate\.", "encoder.layer.$1.intermediate.dense."),
            (@"^layers\.(\d+)\.output\.", "encoder.layer.$1.output.dense."),
            (@"^layers\.(\d+)\.output_norm\.", "encoder.layer.$1.output.LayerNorm."),
            (@"^pooler\.", "pooler.dense."),
        };
        var result = new Dictionary<string, Tensor>();
        foreach (var (key, t) in model.state_dict())
        {
            var name = key;
            foreach (var (from, to) in map)
                if (Regex.IsMatch(key, from)) { name = Regex.Replace(key, from, to); break; }
            result[name.StartsWith("classifier.") ? name : "bert." + name] = t.detach().clone();
        }
        return result;
    }

    /// <summary>timm's names: fused attn.qkv (as believed: query, key, value along the output axis), attn.proj.</summary>
    public static Dictionary<string, Tensor> VitToTimm(VisionTransformer model)
    {
        var sd = model.state_dict();
        var result = new Dictionary<string, Tensor>();
        foreach (var (key, t) in sd)
        {
            var m = Regex.Match(key, @"^blocks\.(\d+)\.attn\.(query|key|value|output)\.(weight|bias)$");
            if (!m.Success) { result[key] = t.detach().clone(); continue; }
            var (i, part, kind) = (m.Groups[1].Value, m.Groups[2].Value, m.Groups[3].Value);
            if (part == "output") result[$"blocks.{i}.attn.proj.{kind}"] = t.detach().clone();
            else if (part == "query")
                result[$"blocks.{i}.attn.qkv.{kind}"] = cat(new[]
                {
                    sd[$"blocks.{i}.attn.query.{kind}"], sd[$"blocks.{i}.attn.key.{kind}"], sd[$"blocks.{i}.attn.value.{kind}"],
                }, 0).detach().clone();
        }
        return result;
    }

    /// <summary>Hugging Face ViTForImageClassification names.</summary>
    public static Dictionary<string, Tensor> VitToHuggingFace(VisionTransformer model)
    {
        (string, string)[] map =
        {
            (@"^patch_embed\.proj\.", "vit.embeddings.patch_embeddings.projection."),
            (@"^cls_token$", "vit.embeddings.cls_token"),
            (@"^pos_embed$", "vit.embeddings.position_embeddings"),
            (@"^blocks\.(\d+)\.norm1\.", "vit.encoder.layer.$1.layernorm_before."),
            (@"^blocks\.(\d+)\.attn\.(query|key|value)\.", "vit.encoder.layer.$1.attention.attention.$2."),
            (@"^blocks\.(\d+)\.attn\.output\.", "vit.encoder.layer.$1.attention.output.dense."),
            (@"^blocks\.(\d+)\.norm2\.", "vit.encoder.layer.$1.layernorm_after."),
            (@"^blocks\.(\d+)\.mlp\.fc1\.", "vit.encoder.layer.$1.intermediate.dense."),
            (@"^blocks\.(\d+)\.mlp\.fc2\.", "vit.encoder.layer.$1.output.dense."),
            (@"^norm\.", "vit.layernorm."),
            (@"^head\.", "classifier."),
        };
        var result = new Dictionary<string, Tensor>();
        foreach (var (key, t) in model.state_dict())
        {
            var (from, to) = map.First(m => Regex.IsMatch(key, m.Item1));
            result[Regex.Replace(key, from, to)] = t.detach().clone();
        }
        return result;
    }
}
