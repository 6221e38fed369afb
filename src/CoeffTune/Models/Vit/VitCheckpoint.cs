using System.Text.Json;
using System.Text.RegularExpressions;
using CoeffTune.Models;
using static TorchSharp.torch;

namespace CoeffTune.Checkpoints;

/// <summary>
/// Loads Vision Transformer weights in timm's layout (fused attn.qkv) or Hugging Face's
/// (ViTModel / ViTForImageClassification) into <see cref="VisionTransformer"/>, whose field names are timm's
/// with the attention split into attn.{query,key,value,output}.
/// </summary>
public static class VitCheckpoint
{
    /// <summary>ViTModel's names (a checkpoint's, already stripped of vit./base_model.model.): the family's bare-encoder layout.</summary>
    private static readonly NameMap HfNames = VitFamily.Definition.Layouts.Single(l => l.Layout == "huggingface-base");

    private static readonly Regex TimmQkv = new(@"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$");
    private static readonly Regex TimmProj = new(@"^blocks\.(\d+)\.attn\.proj\.(weight|bias)$");
    /// <summary>ViTModel's pooler is not part of a classifier that reads the CLS token through the final norm.</summary>
    private static readonly Regex Ignorable = new(@"^pooler\.dense\.(weight|bias)$");

    public enum Layout { Timm, HuggingFace }

    public static Layout Detect(IEnumerable<string> keys, string source)
    {
        var list = keys.ToList();
        if (list.Any(k => k.StartsWith("encoder.layer.", StringComparison.Ordinal) || k.StartsWith("embeddings.", StringComparison.Ordinal)))
            return Layout.HuggingFace;
        if (list.Any(k => k.StartsWith("blocks.", StringComparison.Ordinal) || k.StartsWith("patch_embed.", StringComparison.Ordinal)))
            return Layout.Timm;
        throw new ArgumentException($"checkpoint {source} is neither a timm nor a Hugging Face ViT (no blocks.* or encoder.layer.* tensors)");
    }

    /// <summary>Renames either layout (already stripped of vit./base_model.model.) to the model's names; splits timm's fused qkv.</summary>
    public static Dictionary<string, Tensor> ToModelNames(Dictionary<string, Tensor> w, string source, List<string> ignored)
    {
        var layout = Detect(w.Keys, source);
        var result = new Dictionary<string, Tensor>(w.Count + 16);
        void Add(string name, Tensor t, string from)
        {
            if (!result.TryAdd(name, t))
                throw new InvalidDataException($"checkpoint {source} has two tensors that both map to '{name}' (one is '{from}')");
        }
        foreach (var (key, t) in w)
        {
            if (Ignorable.IsMatch(key)) { ignored.Add(key); t.Dispose(); continue; }
            if (layout == Layout.HuggingFace)
            {
                Add(HfNames.ToOurs(key, maxRest: 1) ?? key, t, key);
                continue;
            }
            if (TimmQkv.Match(key) is { Success: true } m)
            {
                // Fused [3D, ...]: query rows first, then key, then value.
                if (t.shape[0] % 3 != 0)
                    throw new ArgumentException($"tensor '{key}' in checkpoint {source} has shape [{string.Join(", ", t.shape)}]; a fused qkv needs a first dimension divisible by 3");
                var parts = t.chunk(3, 0);
                string[] names = { "query", "key", "value" };
                for (int i = 0; i < 3; i++) Add($"blocks.{m.Groups[1].Value}.attn.{names[i]}.{m.Groups[2].Value}", parts[i].contiguous(), key);
                foreach (var p in parts) p.Dispose();
                t.Dispose();
            }
            else if (TimmProj.Match(key) is { Success: true } pm)
                Add($"blocks.{pm.Groups[1].Value}.attn.output.{pm.Groups[2].Value}", t, key);
            else
                Add(key, t, key);
        }
        return result;
    }

    /// <summary>
    /// The ViT shape from the tensors (model names). Heads come from <paramref name="heads"/>, else config.json's
    /// num_attention_heads (Hugging Face) or model_args.num_heads (timm); they are never guessed
    /// (<see cref="MissingHeadCountException"/>). LayerNorm eps: config.json, else timm's 1e-6 or Hugging Face's 1e-12.
    /// </summary>
    public static VitConfig InferConfig(IReadOnlyDictionary<string, Tensor> w, string source, int classes, Layout layout, int? heads = null, JsonElement? config = null)
    {
        var proj = CheckpointFile.Require(w, "patch_embed.proj.weight", source, 4);
        var pos = CheckpointFile.Require(w, "pos_embed", source, 3);
        var fc1 = CheckpointFile.Require(w, "blocks.0.mlp.fc1.weight", source, 2);
        int dim = (int)proj.shape[0], patch = (int)proj.shape[2];
        long patches = pos.shape[1] - 1;
        int side = (int)Math.Round(Math.Sqrt(patches));
        if (side * side != patches)
            throw new ArgumentException($"tensor 'pos_embed' in checkpoint {source} has {pos.shape[1]} positions; expected 1 + a square number of patches");
        // timm's own config.json keeps the constructor's arguments under model_args.
        JsonElement? modelArgs = config is { ValueKind: JsonValueKind.Object } c && c.TryGetProperty("model_args", out var a) ? a : null;
        int h = heads ?? CheckpointFile.GetInt(config, "num_attention_heads") ?? CheckpointFile.GetInt(modelArgs, "num_heads")
            ?? throw new MissingHeadCountException(source, "num_attention_heads (or timm's model_args.num_heads)");
        return new VitConfig
        {
            ImageSize = side * patch, PatchSize = patch, Channels = (int)proj.shape[1], Dim = dim,
            Depth = BertCheckpoint.LayerCount(w.Keys, "blocks.", source), Heads = h, MlpDim = (int)fc1.shape[0], Classes = classes,
            LayerNormEps = CheckpointFile.GetDouble(config, "layer_norm_eps") ?? (layout == Layout.Timm ? 1e-6 : 1e-12),
        }.Validate();
    }

    /// <summary>
    /// Builds a <see cref="VisionTransformer"/> shaped like the safetensors checkpoint at <paramref name="path"/>
    /// and loads it. With <paramref name="classes"/> given the head is fresh; without, the checkpoint's head is loaded.
    /// </summary>
    public static (VisionTransformer Model, LoadReport Report) Load(string path, int? classes = null, int? heads = null, bool strict = true)
    {
        if (!path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException($"{path}: a ViT checkpoint must be a .safetensors file");
        var raw = CheckpointFile.Normalize(CheckpointFile.ReadSafetensors(path));
        var layout = Detect(raw.Keys, path);
        var ignored = new List<string>();
        var w = ToModelNames(raw, path, ignored);
        try
        {
            if (classes is not null)
                foreach (var k in w.Keys.Where(k => k.StartsWith("head.", StringComparison.Ordinal)).ToList())
                {
                    ignored.Add(k);
                    w.Remove(k, out var t);
                    t!.Dispose();
                }
            int n = classes ?? (w.TryGetValue("head.weight", out var head) ? (int)head.shape[0] : 1000);
            var config = InferConfig(w, path, n, layout, heads, CheckpointFile.ReadConfigBeside(path));
            var model = new VisionTransformer(config);
            try
            {
                return (model, StateDictLoader.Load(model, w, path, strict, freshPrefixes: new[] { model.HeadName }, ignored));
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        finally
        {
            CheckpointFile.DisposeAll(w.Values);
        }
    }
}
