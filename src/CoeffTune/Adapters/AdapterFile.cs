using System.Text.Json;
using System.Text.Json.Nodes;
using CoeffTune.Methods;
using CoeffTune.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Adapters;

/// <summary>What an adapter folder says about itself, beside its tensors.</summary>
public sealed record AdapterInfo(string Recipe, string BaseIdentity, string Architecture, string? BaseName, IReadOnlyList<string> Labels, JsonObject Config)
{
    /// <summary>How the base model pooled token states when the adapter was trained ("mean", "cls", ...); null in older adapters.</summary>
    public string? Pooling => (Config["base_model"] as JsonObject)?["pooling"] is JsonValue v && v.TryGetValue<string>(out var p) ? p : null;
}

/// <summary>
/// Adapter folders in the Hugging Face PEFT layout: adapter_config.json and
/// adapter_model.safetensors holding only the trainable tensors, keyed
/// "base_model.model.&lt;state-dict name&gt;". Names: LoRA "...lora_A.weight" / "...lora_B.weight",
/// DoRA "...lora_magnitude_vector", Coeff-Tuning "&lt;attention&gt;.mixing.alpha", SSF
/// "...ssf_scale" / "...ssf_shift", the head "&lt;head&gt;.weight" / ".bias".
/// Files are written to a temporary name and renamed, so a crash never leaves a half-written adapter.
/// </summary>
public static class AdapterFile
{
    public const string ConfigName = "adapter_config.json";
    public const string WeightsName = "adapter_model.safetensors";
    public const string KeyPrefix = "base_model.model.";
    public const string FormatName = "coefftune-adapter";
    public const int FormatVersion = 1;

    /// <summary>
    /// Writes the adapter folder as a whole: both files go into a temporary folder beside <paramref name="dir"/>,
    /// which then replaces it, so <paramref name="dir"/> never holds weights without their config or a mix of two saves.
    /// </summary>
    public static void Save(PeftModel peft, string dir, string? baseName = null, IReadOnlyList<string>? labels = null)
    {
        var full = Path.GetFullPath(dir);
        var parent = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        var tmp = Path.Combine(parent, $".tmp-{Path.GetFileName(full)}-{Guid.NewGuid():N}");
        var old = Path.Combine(parent, $".tmp-{Path.GetFileName(full)}-old-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            var state = peft.Model.state_dict();
            var tensors = new Dictionary<string, Tensor>();
            foreach (var name in peft.TrainableNames)
                tensors[KeyPrefix + name] = state[name].detach().cpu().contiguous();
            Safetensors.SaveStateDict(Path.Combine(tmp, WeightsName), tensors);
            foreach (var t in tensors.Values) t.Dispose();
            File.WriteAllText(Path.Combine(tmp, ConfigName), BuildConfig(peft, baseName, labels).ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            // Two renames: the old folder aside, the new one in; a crash between them leaves no adapter rather than a mixed one.
            if (Directory.Exists(full)) Directory.Move(full, old);
            Directory.Move(tmp, full);
        }
        finally
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        }
    }

    private static JsonObject BuildConfig(PeftModel peft, string? baseName, IReadOnlyList<string>? labels)
    {
        var methods = new JsonObject();
        foreach (var m in peft.Methods) methods[m.Config.Method] = m.Config.ToJson();
        var o = new JsonObject
        {
            ["format"] = FormatName,
            ["format_version"] = FormatVersion,
            ["recipe"] = peft.Recipe,
            ["methods"] = methods,
            ["base_model"] = new JsonObject
            {
                ["architecture"] = peft.Model.Architecture,
                ["identity"] = peft.BaseIdentity,
                ["name_or_path"] = baseName,
                ["pooling"] = peft.Model.PoolingName,
                ["parameters"] = peft.Model.BaseParameterCount,
            },
            ["labels"] = ConfigJson.Array(labels ?? Array.Empty<string>()),
            ["trainable"] = peft.Report().Total,
            // Hugging Face PEFT's own fields, where the method exists there.
            ["base_model_name_or_path"] = baseName,
            ["modules_to_save"] = ConfigJson.Array(new[] { peft.Model.HeadName }),
        };
        var lora = peft.Methods.Select(m => m.Config).FirstOrDefault(c => c.Method is "lora" or "dora");
        if (lora is not null)
        {
            o["peft_type"] = "LORA";
            foreach (var (k, v) in lora.ToJson()) o[k] = v?.DeepClone();
            o["use_dora"] = lora.Method == "dora";
            o["bias"] = "none";
        }
        return o;
    }

    /// <summary>Reads an adapter folder's config, naming the file and key at fault.</summary>
    public static AdapterInfo ReadInfo(string dir)
    {
        var path = Path.Combine(dir, ConfigName);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: no adapter config (is '{dir}' an adapter folder?)");
        JsonObject o;
        try { o = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidDataException("not a JSON object"); }
        catch (Exception e) when (e is JsonException or InvalidDataException) { throw new InvalidDataException($"{path}: not valid JSON ({e.Message})"); }
        string Str(JsonNode? n, string key) => n switch
        {
            null => throw new InvalidDataException($"{path}: missing key '{key}'"),
            JsonValue v when v.TryGetValue<string>(out var s) => s,
            _ => throw new InvalidDataException($"{path}: '{key}' is {n.ToJsonString()}, expected a string"),
        };
        if (o["format"] is not null && Str(o["format"], "format") != FormatName) throw new InvalidDataException($"{path}: 'format' is not {FormatName}");
        int version = o["format_version"] switch
        {
            null => throw new InvalidDataException($"{path}: missing key 'format_version'"),
            JsonValue v when v.TryGetValue<int>(out var i) => i,
            var other => throw new InvalidDataException($"{path}: 'format_version' is {other.ToJsonString()}, expected an integer"),
        };
        if (version > FormatVersion)
            throw new InvalidDataException($"{path}: format_version {version} is newer than this library reads ({FormatVersion}); upgrade CoeffTune");
        var b = o["base_model"] as JsonObject ?? throw new InvalidDataException($"{path}: missing key 'base_model' (an object)");
        var labels = o["labels"] switch
        {
            null => new List<string>(),
            JsonArray a => a.Select((x, i) => Str(x, $"labels[{i}]")).ToList(),
            var other => throw new InvalidDataException($"{path}: 'labels' is {other.ToJsonString()}, expected an array of strings"),
        };
        return new AdapterInfo(Str(o["recipe"], "recipe"), Str(b["identity"], "base_model.identity"), Str(b["architecture"], "base_model.architecture"),
            b["name_or_path"] is null ? null : Str(b["name_or_path"], "base_model.name_or_path"), labels, o);
    }

    /// <summary>
    /// Wraps <paramref name="model"/> with the adapter's recipe and loads its tensors. The base model must
    /// be the one the adapter was trained on (checked by fingerprint); every tensor's presence and shape is checked.
    /// </summary>
    public static PeftModel Load(TransformerClassifier model, string dir)
    {
        var info = ReadInfo(dir);
        var configPath = Path.Combine(dir, ConfigName);
        if (info.Architecture != model.Architecture)
            throw new InvalidDataException($"{configPath}: adapter is for a {info.Architecture} model, not {model.Architecture}");
        if (info.Pooling is { } pooling && pooling != model.PoolingName)
            throw new InvalidDataException($"{configPath}: adapter was trained on the model's {pooling} pooling, this model pools by {model.PoolingName}; load the base model with that pooling");
        var identity = PeftModel.Fingerprint(model);
        if (identity != info.BaseIdentity)
            throw new InvalidDataException($"{configPath}: adapter was trained on base model {info.BaseIdentity} ({info.BaseName ?? "unnamed"}), this model is {identity}");
        var methods = info.Config["methods"] as JsonObject ?? throw new InvalidDataException($"{configPath}: missing key 'methods'");
        var options = methods.ToDictionary(kv => kv.Key, kv => kv.Value as JsonObject ?? new JsonObject());
        PeftModel peft;
        try { peft = PeftModel.Wrap(model, info.Recipe, options); }
        catch (FormatException e) { throw new InvalidDataException($"{configPath}: {e.Message}"); }

        var weightsPath = Path.Combine(dir, WeightsName);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{weightsPath}: adapter weights are missing");
        Dictionary<string, Tensor> loaded;
        loaded = IO.SafetensorsFile.Load(weightsPath);
        try
        {
            var expected = peft.TrainableNames.ToHashSet();
            var unexpected = loaded.Keys.Where(k => !k.StartsWith(KeyPrefix) || !expected.Contains(k[KeyPrefix.Length..])).ToList();
            if (unexpected.Count > 0) throw new InvalidDataException($"{weightsPath}: unexpected tensors {string.Join(", ", unexpected.Take(5))}");
            var missing = expected.Where(n => !loaded.ContainsKey(KeyPrefix + n)).ToList();
            if (missing.Count > 0) throw new InvalidDataException($"{weightsPath}: missing tensors {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? $" and {missing.Count - 5} more" : "")}");
            var state = model.state_dict();
            using (no_grad())
                foreach (var name in expected)
                {
                    var src = loaded[KeyPrefix + name];
                    var dst = state[name];
                    if (!src.shape.SequenceEqual(dst.shape))
                        throw new InvalidDataException($"{weightsPath}: tensor '{name}' has shape [{string.Join(", ", src.shape)}], the model expects [{string.Join(", ", dst.shape)}]");
                    if (src.is_floating_point() && !src.isfinite().all().ToBoolean())
                        throw new InvalidDataException($"{weightsPath}: tensor '{name}' holds NaN or infinite values; the adapter is damaged");
                    dst.copy_(src.to(dst.dtype));
                }
        }
        finally
        {
            foreach (var t in loaded.Values) t.Dispose();
        }
        return peft;
    }
}
