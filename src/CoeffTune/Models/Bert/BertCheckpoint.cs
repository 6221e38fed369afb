using System.Text.Json;
using System.Text.RegularExpressions;
using CoeffTune.Models;
using static TorchSharp.torch;

namespace CoeffTune.Checkpoints;

/// <summary>
/// Loads Hugging Face BertModel weights (safetensors, or an ONNX export) into <see cref="BertClassifier"/>,
/// whose field names are the target names (embeddings.norm, layers.{i}.attention.query, ...).
/// </summary>
public static class BertCheckpoint
{
    /// <summary>BertModel's names (a checkpoint's, already stripped of bert./base_model.model.): the family's bare-encoder layout.</summary>
    private static readonly NameMap HuggingFace = BertFamily.Definition.Layouts.Single(l => l.Layout == "huggingface-base");

    /// <summary>Hugging Face buffers that are not weights.</summary>
    private static readonly Regex Ignorable = new(@"^embeddings\.position_ids$");

    /// <summary>Renames Hugging Face BERT keys (already stripped of bert./base_model.model.) to the model's
    /// names; names already in the model's form pass through. Position-id buffers go to <paramref name="ignored"/>.</summary>
    public static Dictionary<string, Tensor> FromHuggingFace(Dictionary<string, Tensor> hf, List<string> ignored)
    {
        var result = new Dictionary<string, Tensor>(hf.Count);
        foreach (var (key, t) in hf)
        {
            if (Ignorable.IsMatch(key)) { ignored.Add(key); t.Dispose(); continue; }
            var name = HuggingFace.ToOurs(key, maxRest: 1) ?? key;
            if (!result.TryAdd(name, t))
                throw new InvalidDataException($"checkpoint has two tensors that both map to '{name}' (one is '{key}')");
        }
        return result;
    }

    /// <summary>Reads a .onnx or .safetensors file into the model's names; <paramref name="heads"/> is set when an ONNX graph shows it.</summary>
    public static Dictionary<string, Tensor> Read(string path, List<string> ignored, out int? heads)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        heads = null;
        var raw = ext switch
        {
            ".onnx" => OnnxCheckpoint.Read(path, out heads),
            ".safetensors" => CheckpointFile.Normalize(CheckpointFile.ReadSafetensors(path)),
            _ => throw new ArgumentException($"{path}: unknown checkpoint format '{ext}'; expected .onnx or .safetensors"),
        };
        return FromHuggingFace(raw, ignored);
    }

    /// <summary>
    /// The shape of the encoder from the tensors (model names). Heads cannot be read off weights: they come
    /// from <paramref name="heads"/> (the caller's, or an ONNX graph's head split), else config.json's
    /// num_attention_heads; they are never guessed (<see cref="MissingHeadCountException"/>).
    /// </summary>
    public static BertConfig InferConfig(IReadOnlyDictionary<string, Tensor> w, string source, int classes, int? heads = null, JsonElement? config = null,
        Pooling pooling = Pooling.Mean)
    {
        var words = CheckpointFile.Require(w, "embeddings.word_embeddings.weight", source, 2);
        var positions = CheckpointFile.Require(w, "embeddings.position_embeddings.weight", source, 2);
        int dim = (int)words.shape[1];
        int depth = LayerCount(w.Keys, "layers.", source);
        var intermediate = CheckpointFile.Require(w, "layers.0.intermediate.weight", source, 2);
        int types = w.TryGetValue("embeddings.token_type_embeddings.weight", out var tt) ? (int)tt.shape[0] : 2;
        int h = heads ?? CheckpointFile.GetInt(config, "num_attention_heads") ?? throw new MissingHeadCountException(source, "num_attention_heads");
        return new BertConfig
        {
            VocabSize = (int)words.shape[0], Dim = dim, Depth = depth, Heads = h,
            IntermediateDim = (int)intermediate.shape[0], MaxPositions = (int)positions.shape[0], TypeVocabSize = types,
            LayerNormEps = CheckpointFile.GetDouble(config, "layer_norm_eps") ?? 1e-12,
            HasPooler = w.ContainsKey("pooler.weight"), Pooling = pooling, Classes = classes,
        }.Validate();
    }

    /// <summary>
    /// Builds a <see cref="BertClassifier"/> shaped like the checkpoint at <paramref name="path"/> and loads it.
    /// With <paramref name="classes"/> given the head is fresh (a checkpoint's classifier is ignored); without,
    /// the checkpoint's classifier is loaded if it has one.
    /// </summary>
    public static (BertClassifier Model, LoadReport Report) Load(string path, int? classes = null, int? heads = null, bool strict = true,
        Pooling pooling = Pooling.Mean)
    {
        var ignored = new List<string>();
        var w = Read(path, ignored, out var graphHeads);
        try
        {
            if (classes is not null)
                foreach (var k in w.Keys.Where(k => k.StartsWith("classifier.", StringComparison.Ordinal)).ToList())
                {
                    ignored.Add(k);
                    w.Remove(k, out var t);
                    t!.Dispose();
                }
            int n = classes ?? (w.TryGetValue("classifier.weight", out var head) ? (int)head.shape[0] : 2);
            var config = InferConfig(w, path, n, heads ?? graphHeads, CheckpointFile.ReadConfigBeside(path), pooling);
            if (pooling == Pooling.Pooler && !config.HasPooler)
                throw new InvalidDataException($"{path}: pooler pooling needs the checkpoint's pooler.dense weights, and it has none");
            var model = new BertClassifier(config);
            // A model that pools otherwise has no pooler: the checkpoint's pooler is not used, so it is ignored, not unexpected.
            if (model.pooler is null)
                foreach (var k in w.Keys.Where(k => k.StartsWith("pooler.", StringComparison.Ordinal)).ToList())
                {
                    ignored.Add(k);
                    w.Remove(k, out var t);
                    t!.Dispose();
                }
            try
            {
                var report = StateDictLoader.Load(model, w, path, strict, freshPrefixes: new[] { model.HeadName }, ignored);
                return (model, report);
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

    /// <summary>Number of blocks under <paramref name="prefix"/>{i}., checked to be 0..n-1.</summary>
    internal static int LayerCount(IEnumerable<string> keys, string prefix, string source)
    {
        var indices = keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal))
            .Select(k => k[prefix.Length..].Split('.')[0]).Select(s => int.TryParse(s, out var i) ? i : -1)
            .Where(i => i >= 0).Distinct().OrderBy(i => i).ToList();
        if (indices.Count == 0) throw new ArgumentException($"checkpoint {source} has no '{prefix}0.' tensors: it is not a transformer of the expected kind");
        if (indices[^1] != indices.Count - 1)
            throw new ArgumentException($"checkpoint {source} has blocks {string.Join(", ", indices)} under '{prefix}': some are missing");
        return indices.Count;
    }
}
