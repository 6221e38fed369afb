using CoeffTune.Models;
using static TorchSharp.torch;

namespace CoeffTune.Checkpoints;

/// <summary>
/// Loads Hugging Face BART checkpoints (a folder with <c>config.json</c> and <c>model.safetensors</c>, as
/// BartForConditionalGeneration or BartModel saves them) into <see cref="BartForConditionalGeneration"/>.
/// The token embedding is tied: <c>model.shared.weight</c>, <c>model.encoder.embed_tokens.weight</c>,
/// <c>model.decoder.embed_tokens.weight</c> and <c>lm_head.weight</c> are one tensor, and whichever of them the file
/// holds (save_pretrained keeps one) becomes it; two that differ are an error naming both. A missing
/// <c>final_logits_bias</c> is zero, as transformers takes it. Any other missing, unknown or misshapen tensor is a
/// one-line error naming it as the file does.
/// </summary>
public static class BartCheckpoint
{
    public const string WeightsName = "model.safetensors";
    public const string ConfigName = "config.json";

    private static readonly NameMap[] Layouts = BartFamily.Definition.Layouts.ToArray();

    /// <summary>The tied copies of the token embedding, in the order one is taken as the embedding.</summary>
    private static readonly string[] TiedNames =
    {
        "model.shared.weight", "shared.weight", "model.encoder.embed_tokens.weight", "encoder.embed_tokens.weight",
        "model.decoder.embed_tokens.weight", "decoder.embed_tokens.weight", "lm_head.weight",
    };

    /// <summary>The weights file and config.json of a checkpoint given as a folder or as its .safetensors file.</summary>
    public static (string Weights, string Config) Files(string path)
    {
        if (Directory.Exists(path)) return (Path.Combine(path, WeightsName), Path.Combine(path, ConfigName));
        if (File.Exists(path)) return (path, Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, ConfigName));
        throw new FileNotFoundException($"BART checkpoint {path} does not exist (a folder with {ConfigName} and {WeightsName}, or the .safetensors file)", path);
    }

    /// <summary>The folder of a checkpoint given as a folder or as its .safetensors file: where config.json and the tokenizer files are.</summary>
    public static string Folder(string path) => Path.GetDirectoryName(Files(path).Config)!;

    /// <summary>Builds the model config.json describes and loads the checkpoint's weights into it.</summary>
    public static (BartForConditionalGeneration Model, LoadReport Report) Load(string path)
    {
        var (weights, configPath) = Files(path);
        var config = BartConfig.FromJson(configPath);
        CheckpointFile.RequireFile(weights);
        var raw = CheckpointFile.ReadSafetensors(weights);
        try
        {
            var ignored = new List<string>();
            var ours = FromHuggingFace(raw, weights, ignored);
            var model = new BartForConditionalGeneration(config);
            try
            {
                if (!ours.ContainsKey("final_logits_bias"))
                {
                    ours["final_logits_bias"] = zeros(1, config.VocabSize);
                    ignored.Add("final_logits_bias (absent: zero)");
                }
                CheckShapes(model, ours, weights, config);
                model.eval();
                return (model, StateDictLoader.Load(model, ours, weights, strict: true, ignored: ignored));
            }
            catch
            {
                model.Dispose();
                throw;
            }
        }
        finally
        {
            CheckpointFile.DisposeAll(raw.Values);
        }
    }

    /// <summary>
    /// The checkpoint's tensors under this library's names (they alias the file's tensors, which the caller disposes).
    /// Tied copies of the embedding are checked equal and set aside in <paramref name="ignored"/>.
    /// </summary>
    public static Dictionary<string, Tensor> FromHuggingFace(IReadOnlyDictionary<string, Tensor> hf, string source, List<string> ignored)
    {
        var result = new Dictionary<string, Tensor>();
        var tied = TiedNames.Where(hf.ContainsKey).ToList();
        if (tied.Count == 0)
            throw new InvalidDataException($"checkpoint {source} lacks 'model.shared.weight' (nor has it a tied copy: encoder/decoder embed_tokens, lm_head)");
        var embedding = hf[tied[0]];
        foreach (var copy in tied.Skip(1))
        {
            var t = hf[copy];
            if (!t.shape.SequenceEqual(embedding.shape) || !t.allclose(embedding, 0, 0))
                throw new InvalidDataException($"checkpoint {source}: '{copy}' differs from '{tied[0]}'; BART ties its token embeddings and LM head, so they must be one tensor");
            ignored.Add(copy);
        }
        result["shared.weight"] = embedding;
        foreach (var (key, t) in hf)
        {
            if (TiedNames.Contains(key)) continue;
            // fairseq-converted files carry version counters; they are not weights.
            if (key.EndsWith(".version", StringComparison.Ordinal)) { ignored.Add(key); continue; }
            var name = Layouts.Select(l => l.ToOurs(key, maxRest: 1)).FirstOrDefault(n => n is not null)
                ?? throw new InvalidDataException($"checkpoint {source} has a tensor '{key}' that is not part of BART");
            if (!result.TryAdd(name, t))
                throw new InvalidDataException($"checkpoint {source} has two tensors for '{HfName(name)}' (one is '{key}')");
        }
        return result;
    }

    /// <summary>Hugging Face's name (BartForConditionalGeneration's) for a tensor of this library's model.</summary>
    public static string HfName(string ours) => BartFamily.Definition.Written.ToTheirs(ours) ?? ours;

    /// <summary>Every tensor the model needs is there with the shape config.json implies, else an error naming the first that is not.</summary>
    private static void CheckShapes(BartForConditionalGeneration model, IReadOnlyDictionary<string, Tensor> ours, string source, BartConfig config)
    {
        foreach (var (name, dest) in model.state_dict())
        {
            if (!ours.TryGetValue(name, out var src))
                throw new InvalidDataException($"checkpoint {source} lacks '{HfName(name)}', which a BART of {config.EncoderLayers}+{config.DecoderLayers} layers needs");
            if (!src.shape.SequenceEqual(dest.shape))
            {
                var why = name.EndsWith("embed_positions.weight", StringComparison.Ordinal)
                    ? $" (max_position_embeddings {config.MaxPositionEmbeddings} + BART's offset {BartConfig.PositionOffset}, d_model {config.DModel})"
                    : "";
                throw new InvalidDataException($"checkpoint {source}: '{HfName(name)}' has shape [{string.Join(", ", src.shape)}], config.json implies [{string.Join(", ", dest.shape)}]{why}");
            }
        }
        var known = model.state_dict().Keys.ToHashSet();
        foreach (var name in ours.Keys.Where(k => !known.Contains(k)))
            throw new InvalidDataException($"checkpoint {source} has '{HfName(name)}', which a BART of {config.EncoderLayers}+{config.DecoderLayers} layers (config.json) does not have");
    }

    /// <summary>
    /// Writes <paramref name="model"/> as Hugging Face's save_pretrained does: config.json and model.safetensors in
    /// BartForConditionalGeneration's names, the embedding once as model.shared.weight.
    /// </summary>
    public static void Save(BartForConditionalGeneration model, string folder)
    {
        Directory.CreateDirectory(folder);
        var tensors = model.state_dict().ToDictionary(kv => HfName(kv.Key), kv => kv.Value.detach().cpu().contiguous());
        TorchSharp.PyBridge.Safetensors.SaveStateDict(Path.Combine(folder, WeightsName), tensors);
        foreach (var t in tensors.Values) t.Dispose();
        File.WriteAllText(Path.Combine(folder, ConfigName), System.Text.Json.JsonSerializer.Serialize(model.Config.ToJson(),
            new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }
}
