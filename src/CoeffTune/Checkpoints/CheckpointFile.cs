using System.Text.Json;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Checkpoints;

/// <summary>Reading tensors from checkpoint files, with errors that name the file.</summary>
public static class CheckpointFile
{
    /// <summary>Prefixes that wrapper models put before the backbone's names; removed wherever they lead.</summary>
    public static readonly string[] WrapperPrefixes = { "base_model.model.", "bert.", "vit." };

    /// <summary>Reads a .safetensors file; half-precision floats become float32.</summary>
    public static Dictionary<string, Tensor> ReadSafetensors(string path)
    {
        RequireFile(path);
        return ToFloat32(IO.SafetensorsFile.Load(path));
    }

    /// <summary>Float tensors of any precision become float32 (f32 is the library's default); integer tensors stay.</summary>
    public static Dictionary<string, Tensor> ToFloat32(Dictionary<string, Tensor> dict)
    {
        foreach (var key in dict.Keys.ToList())
        {
            var t = dict[key];
            if (t.is_floating_point() && t.dtype != ScalarType.Float32)
            {
                dict[key] = t.to_type(ScalarType.Float32);
                t.Dispose();
            }
        }
        return dict;
    }

    /// <summary>Removes wrapper prefixes (bert., vit., base_model.model.) and renames LayerNorm.gamma/beta to weight/bias.</summary>
    public static Dictionary<string, Tensor> Normalize(Dictionary<string, Tensor> dict)
    {
        var result = new Dictionary<string, Tensor>(dict.Count);
        foreach (var (key, t) in dict)
        {
            var name = key;
            for (bool again = true; again;)
            {
                again = false;
                foreach (var p in WrapperPrefixes)
                    if (name.StartsWith(p, StringComparison.Ordinal)) { name = name[p.Length..]; again = true; }
            }
            // Older TensorFlow-converted BERT checkpoints name LayerNorm's parameters gamma and beta.
            if (name.EndsWith("LayerNorm.gamma", StringComparison.Ordinal)) name = name[..^"gamma".Length] + "weight";
            else if (name.EndsWith("LayerNorm.beta", StringComparison.Ordinal)) name = name[..^"beta".Length] + "bias";
            if (!result.TryAdd(name, t))
                throw new InvalidDataException($"checkpoint has two tensors that both map to '{name}' (one is '{key}')");
        }
        return result;
    }

    /// <summary>The config.json beside a checkpoint file, if there is one.</summary>
    public static JsonElement? ReadConfigBeside(string path)
    {
        var config = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(path))!, "config.json");
        if (!File.Exists(config)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(config));
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{config} is not valid JSON: {e.Message}", e);
        }
    }

    public static int? GetInt(JsonElement? config, string name) =>
        config is { ValueKind: JsonValueKind.Object } c && c.TryGetProperty(name, out var v) && v.TryGetInt32(out var i) ? i : null;

    public static double? GetDouble(JsonElement? config, string name) =>
        config is { ValueKind: JsonValueKind.Object } c && c.TryGetProperty(name, out var v) && v.TryGetDouble(out var d) ? d : null;

    public static void RequireFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"checkpoint file {path} does not exist", path);
    }

    /// <summary>A tensor the model cannot do without, or a clear error.</summary>
    public static Tensor Require(IReadOnlyDictionary<string, Tensor> dict, string name, string source, int rank)
    {
        if (!dict.TryGetValue(name, out var t))
            throw new ArgumentException($"checkpoint {source} lacks '{name}', which is needed to infer the model's shape");
        if (t.dim() != rank)
            throw new ArgumentException($"tensor '{name}' in checkpoint {source} has shape [{string.Join(", ", t.shape)}], expected rank {rank}");
        return t;
    }

    public static void DisposeAll(IEnumerable<Tensor> tensors)
    {
        foreach (var t in tensors) t.Dispose();
    }
}
