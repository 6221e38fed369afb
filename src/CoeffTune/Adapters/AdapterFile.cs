using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using CoeffTune.Methods;
using CoeffTune.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Adapters;

/// <summary>What an adapter folder says about itself, beside its tensors.</summary>
/// <param name="Recipe">The methods, e.g. "coeff+lora".</param>
/// <param name="BaseIdentity">Fingerprint of the base weights it was trained on; null when the folder has none (Hugging Face PEFT's own).</param>
/// <param name="Architecture">The model family tag ("bert", "vit"); null when neither the config nor the tensor names tell.</param>
/// <param name="BaseName">The base model to rebuild: a model name of this library or a path; null when unknown.</param>
/// <param name="Labels">Class names, empty when the adapter recorded none.</param>
/// <param name="Classes">Outputs of the saved classification head; null without one.</param>
/// <param name="MethodOptions">Each method's options in this library's naming.</param>
/// <param name="Config">The whole adapter_config.json.</param>
public sealed record AdapterInfo(string Recipe, string? BaseIdentity, string? Architecture, string? BaseName, IReadOnlyList<string> Labels,
    int? Classes, IReadOnlyDictionary<string, JsonObject> MethodOptions, JsonObject Config)
{
    /// <summary>Attention heads of the base model, as recorded when the adapter was saved; null when not recorded.</summary>
    public int? Heads => (Config["base_model"] as JsonObject)?["heads"] is JsonValue v && v.TryGetValue<int>(out var h) ? h : null;

    /// <summary>How the base model pooled token states when the adapter was trained ("mean", "cls", ...); null when not recorded.</summary>
    public string? Pooling => (Config["base_model"] as JsonObject)?["pooling"] is JsonValue v && v.TryGetValue<string>(out var p) ? p : null;

    /// <summary>True for a folder written by Hugging Face PEFT (or stripped to PEFT's fields): no fields of this library.</summary>
    public bool PeftOnly => Config["format"] is null;
}

/// <summary>
/// Adapter folders in Hugging Face PEFT's format, readable by PEFT and by this library both ways.
/// <list type="bullet">
/// <item>adapter_model.safetensors holds only the trained tensors, keyed "base_model.model." plus the base model's
/// Hugging Face module path (<see cref="ModelFamily.Written"/>): BERT "bert.encoder.layer.{i}.attention.self.query.lora_A.weight",
/// ViT "vit.encoder.layer.{i}.attention.attention.query.lora_A.weight", the head "classifier.weight". Names: LoRA
/// "lora_A.weight" / "lora_B.weight", DoRA "lora_magnitude_vector", SSF "ssf_scale" / "ssf_shift", and Coeff-Tuning's
/// "mixing.alpha" on the module that makes the maps (BertSelfAttention, ViTSelfAttention), a name PEFT leaves alone.</item>
/// <item>adapter_config.json carries PEFT's own fields (peft_type, task_type, r, lora_alpha, target_modules,
/// modules_to_save, base_model_name_or_path as the Hugging Face id where known) and this library's (format, recipe,
/// methods, base_model with the weights' fingerprint, labels).</item>
/// </list>
/// A plain PEFT LoRA or DoRA folder loads too: the recipe comes from peft_type and use_dora, the fingerprint is checked
/// only when present, and a LoRA on a fused projection (timm's attn.qkv) is split onto the three projections.
/// The folder is written whole to a temporary folder and renamed, so a crash never leaves a half-written adapter.
/// </summary>
public static class AdapterFile
{
    public const string ConfigName = "adapter_config.json";
    public const string WeightsName = "adapter_model.safetensors";
    public const string KeyPrefix = "base_model.model.";
    public const string FormatName = "coefftune-adapter";
    /// <summary>2: tensors keyed by Hugging Face module paths. 1: keyed by this library's module paths (still read).</summary>
    public const int FormatVersion = 2;

    /// <summary>The key under which the tensor of state-dict name <paramref name="name"/> of a model of <paramref name="architecture"/> is saved.</summary>
    public static string KeyFor(string? architecture, string name)
    {
        var map = ModelFamilies.Find(architecture)?.Written;
        if (map is null) return KeyPrefix + name;
        return KeyPrefix + (map.ToTheirs(name) ?? (AtModelRoot(name) ? name
            : throw new InvalidOperationException($"'{name}' has no {map.Layout} name in the {architecture} layout")));
    }

    /// <summary>
    /// True for the state of a module a method registered on the model itself (FacT's shared factors, VPT's prompts):
    /// it belongs to no module of any layout, so it keeps its own name in every one.
    /// </summary>
    private static bool AtModelRoot(string name) => MethodRegistry.ModuleNames.Contains(name.Split('.')[0]);

    /// <summary>Saves a classifier's adapter; <paramref name="baseName"/> is the model name or path it can be rebuilt from.</summary>
    public static void Save(PeftModel peft, string dir, string? baseName = null, IReadOnlyList<string>? labels = null)
    {
        var config = BuildConfig(peft, baseName, labels);
        var state = peft.Model.state_dict();
        IO.AtomicFile.WriteDirectory(dir, tmp =>
        {
            var tensors = new Dictionary<string, Tensor>();
            foreach (var name in peft.TrainableNames)
                tensors[KeyFor(peft.Architecture, name)] = state[name].detach().cpu().contiguous();
            Safetensors.SaveStateDict(Path.Combine(tmp, WeightsName), tensors);
            foreach (var t in tensors.Values) t.Dispose();
            File.WriteAllText(Path.Combine(tmp, ConfigName), config.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        });
    }

    private static JsonObject BuildConfig(PeftModel peft, string? baseName, IReadOnlyList<string>? labels)
    {
        var family = ModelFamilies.Find(peft.Architecture);
        string Theirs(string name) => KeyFor(peft.Architecture, name)[KeyPrefix.Length..];
        var o = new JsonObject();
        // Hugging Face PEFT's own fields first, where PEFT has the method.
        foreach (var m in peft.Methods)
        {
            var fields = m.Config.PeftFields(PeftTargetModules(peft, m.Targets.Select(Theirs).ToList()));
            if (fields is null) continue;
            if (o.ContainsKey("peft_type")) throw new InvalidOperationException($"recipe '{peft.Recipe}' has two methods with Hugging Face PEFT fields; one adapter folder holds one");
            foreach (var (k, v) in fields) o[k] = v?.DeepClone();
        }
        string? hfId = baseName is not null && family?.HuggingFaceIds.TryGetValue(baseName, out var id) == true ? id : null;
        o["task_type"] = family?.PeftTaskType;
        o["base_model_name_or_path"] = hfId ?? baseName;
        o["revision"] = null;
        o["inference_mode"] = true;
        o["modules_to_save"] = ConfigJson.Array(peft.ModulesToSave.Select(Theirs));

        var methods = new JsonObject();
        foreach (var m in peft.Methods) methods[m.Config.Method] = m.Config.ToJson();
        var model = new JsonObject
        {
            ["architecture"] = peft.Architecture,
            ["identity"] = peft.BaseIdentity,
            ["name_or_path"] = baseName,
            ["parameters"] = peft.BaseParameterCount,
            ["heads"] = peft.Model.modules().OfType<Attention.MultiHeadAttention>().FirstOrDefault()?.Heads,
        };
        if (peft.Model is TransformerClassifier classifier) model["pooling"] = classifier.PoolingName;
        o["format"] = FormatName;
        o["format_version"] = FormatVersion;
        o["key_layout"] = family?.Written.Layout ?? "coefftune";
        o["recipe"] = peft.Recipe;
        o["methods"] = methods;
        o["base_model"] = model;
        o["labels"] = ConfigJson.Array(labels ?? Array.Empty<string>());
        o["trainable"] = peft.Report().Total;
        return o;
    }

    /// <summary>
    /// target_modules as PEFT would write them: the targets' last names (e.g. ["query", "value"]) when those pick
    /// exactly the targets among the model's modules, else the targets' full paths.
    /// </summary>
    private static IReadOnlyList<string> PeftTargetModules(PeftModel peft, IReadOnlyList<string> targets)
    {
        var leaves = targets.Select(t => t.Split('.')[^1]).Distinct().OrderBy(l => l, StringComparer.Ordinal).ToList();
        var family = ModelFamilies.Find(peft.Architecture)?.Written;
        var all = peft.Model.named_modules().Select(m => m.name).Where(n => n.Length > 0 && !n.Split('.').Any(MethodRegistry.ModuleNames.Contains))
            .Select(n => family is null ? n : family.ToTheirs(n)).OfType<string>().ToHashSet();
        var picked = all.Where(n => leaves.Any(l => n == l || n.EndsWith("." + l, StringComparison.Ordinal))).ToHashSet();
        return picked.SetEquals(targets) ? leaves : targets.OrderBy(t => t, StringComparer.Ordinal).ToList();
    }

    /// <summary>Reads an adapter folder's config (and its tensor names), naming the file and key at fault.</summary>
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
        string? OptStr(JsonNode? n, string key) => n is null ? null : Str(n, key);
        var weightsPath = Path.Combine(dir, WeightsName);
        if (!File.Exists(weightsPath)) throw new FileNotFoundException($"{weightsPath}: adapter weights are missing");
        var shapes = IO.SafetensorsFile.Validate(weightsPath);

        if (o["format"] is null) return ReadPeftInfo(o, path, shapes, Str);

        if (Str(o["format"], "format") != FormatName) throw new InvalidDataException($"{path}: 'format' is not {FormatName}");
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
        var methods = o["methods"] as JsonObject ?? throw new InvalidDataException($"{path}: missing key 'methods' (an object)");
        var options = methods.ToDictionary(kv => kv.Key, kv => kv.Value as JsonObject
            ?? throw new InvalidDataException($"{path}: 'methods.{kv.Key}' is {kv.Value?.ToJsonString() ?? "null"}, expected an object"));
        var architecture = Str(b["architecture"], "base_model.architecture");
        return new AdapterInfo(Str(o["recipe"], "recipe"), OptStr(b["identity"], "base_model.identity"), architecture,
            OptStr(b["name_or_path"], "base_model.name_or_path"), labels, HeadOutputs(shapes, architecture, version), options, o);
    }

    /// <summary>A folder with PEFT's fields only: a LoRA or DoRA, plus Coeff-Tuning when its tensors are there.</summary>
    private static AdapterInfo ReadPeftInfo(JsonObject o, string path, IReadOnlyDictionary<string, long[]> shapes, Func<JsonNode?, string, string> str)
    {
        var peftType = str(o["peft_type"], "peft_type");
        if (peftType != "LORA")
            throw new InvalidDataException($"{path}: peft_type '{peftType}' is not read by this library; it reads LORA (with use_dora for DoRA) adapters of Hugging Face PEFT");
        bool Flag(string key) => o[key] switch
        {
            null => false,
            JsonValue v when v.TryGetValue<bool>(out var f) => f,
            var other => throw new InvalidDataException($"{path}: '{key}' is {other.ToJsonString()}, expected true or false"),
        };
        if (Flag("use_rslora")) throw new InvalidDataException($"{path}: 'use_rslora' is true; rank-stabilised LoRA scaling is not supported");
        if (Flag("fan_in_fan_out")) throw new InvalidDataException($"{path}: 'fan_in_fan_out' is true; it is for Conv1D layers, which these models do not have");
        foreach (var key in new[] { "rank_pattern", "alpha_pattern" })
            if (o[key] is JsonObject p && p.Count > 0) throw new InvalidDataException($"{path}: '{key}' is not empty; per-layer ranks and alphas are not supported");
        if (o["bias"] is { } bias && str(bias, "bias") != "none") throw new InvalidDataException($"{path}: 'bias' is '{str(bias, "bias")}'; only \"none\" is supported");
        var options = new JsonObject();
        foreach (var key in new[] { "r", "lora_alpha", "lora_dropout" })
            if (o[key] is { } v) options[key] = v.DeepClone();
        var lora = Flag("use_dora") ? "dora" : "lora";
        bool coeff = shapes.Keys.Any(k => k.EndsWith("." + Methods.Coeff.CoeffTuning.ModuleName + ".alpha", StringComparison.Ordinal));
        var family = ModelFamilies.All.FirstOrDefault(f => f.Layouts.Any(l => shapes.Keys.All(k => MapsUnder(f, l, k))));
        string? baseName = o["base_model_name_or_path"] is { } n ? str(n, "base_model_name_or_path") : null;
        // A Hugging Face id of a model this library fetches becomes its name here.
        var known = ModelFamilies.All.SelectMany(f => f.HuggingFaceIds).FirstOrDefault(kv => kv.Value == baseName).Key;
        var recipeOptions = new Dictionary<string, JsonObject> { [lora] = options };
        return new AdapterInfo(coeff ? "coeff+" + lora : lora, null, family?.Name, known ?? baseName, Array.Empty<string>(),
            HeadOutputs(shapes, family?.Name, FormatVersion), recipeOptions, o);
    }

    private static bool MapsUnder(ModelFamily family, NameMap layout, string key) =>
        key.StartsWith(KeyPrefix, StringComparison.Ordinal) && (Fused(family, key[KeyPrefix.Length..]) is not null || layout.ToOurs(key[KeyPrefix.Length..]) is not null);

    /// <summary>Rows of the saved head's weight (the head of the family's classifier), or null.</summary>
    private static int? HeadOutputs(IReadOnlyDictionary<string, long[]> shapes, string? architecture, int version)
    {
        if (ModelFamilies.Find(architecture)?.HeadModule is not { } module) return null;
        var head = module + ".weight";
        var key = version < 2 ? KeyPrefix + head : KeyFor(architecture, head);
        return shapes.TryGetValue(key, out var s) && s.Length == 2 ? (int)s[0] : null;
    }

    /// <summary>Loads an adapter onto a classifier: its head is the module to save.</summary>
    public static PeftModel Load(TransformerClassifier model, string dir) =>
        Load(model, model.Architecture, new[] { model.HeadName }, dir, model.PoolingName);

    /// <summary>
    /// Wraps <paramref name="model"/> with the adapter's recipe and loads its tensors. When the adapter records the
    /// base model's fingerprint, the model must be the one it was trained on; every tensor's presence and shape is checked.
    /// </summary>
    public static PeftModel Load(nn.Module model, string architecture, IReadOnlyList<string> modulesToSave, string dir, string? pooling = null)
    {
        var info = ReadInfo(dir);
        var configPath = Path.Combine(dir, ConfigName);
        if (info.Architecture is { } arch && arch != architecture)
            throw new InvalidDataException($"{configPath}: adapter is for a {arch} model, not {architecture}");
        if (info.Pooling is { } p && pooling is not null && p != pooling)
            throw new InvalidDataException($"{configPath}: adapter was trained on the model's {p} pooling, this model pools by {pooling}; load the base model with that pooling");
        if (info.BaseIdentity is { } expected)
        {
            var identity = PeftModel.Fingerprint(model, architecture, modulesToSave);
            if (identity != expected)
                throw new InvalidDataException($"{configPath}: adapter was trained on base model {expected} ({info.BaseName ?? "unnamed"}), this model is {identity}");
        }
        var weightsPath = Path.Combine(dir, WeightsName);
        var raw = IO.SafetensorsFile.Load(weightsPath);
        var made = new List<Tensor>();
        try
        {
            int version = info.PeftOnly ? FormatVersion : info.Config["format_version"]!.GetValue<int>();
            var loaded = ToModelNames(raw, ModelFamilies.Find(architecture), version, weightsPath, made);
            IReadOnlyList<IMethodConfig> configs;
            try
            {
                configs = Recipe.Parse(info.Recipe, info.MethodOptions).Select(c =>
                {
                    var definition = MethodRegistry.Get(c.Method);
                    if (definition.TargetTensorSuffix is null) return c;
                    var targets = definition.TargetsFromTensorNames(loaded.Keys);
                    if (targets.Count == 0)
                        throw new InvalidDataException($"{weightsPath}: the recipe has {c.Method}, but no tensor ends in '{definition.TargetTensorSuffix}'");
                    return c.WithTargets(targets);
                }).ToList();
            }
            catch (Exception e) when (e is FormatException or ArgumentException) { throw new InvalidDataException($"{configPath}: {e.Message}"); }

            PeftModel peft;
            try { peft = PeftModel.Wrap(model, architecture, modulesToSave, configs.ToArray()); }
            catch (ArgumentException e) { throw new InvalidDataException($"{weightsPath}: the adapter's tensors do not fit this model: {e.Message}"); }

            // Errors name tensors as the file does.
            string InFile(string name) => version < 2 ? KeyPrefix + name : KeyFor(architecture, name);
            var names = peft.TrainableNames.ToHashSet();
            var unexpected = loaded.Keys.Where(k => !names.Contains(k)).Select(InFile).ToList();
            if (unexpected.Count > 0) throw new InvalidDataException($"{weightsPath}: unexpected tensors {string.Join(", ", unexpected.Take(5))}");
            var missing = names.Where(n => !loaded.ContainsKey(n)).Select(InFile).ToList();
            if (missing.Count > 0) throw new InvalidDataException($"{weightsPath}: missing tensors {string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? $" and {missing.Count - 5} more" : "")}");
            var state = model.state_dict();
            using (no_grad())
                foreach (var name in names)
                {
                    var src = loaded[name];
                    var dst = state[name];
                    if (!src.shape.SequenceEqual(dst.shape))
                        throw new InvalidDataException($"{weightsPath}: tensor '{InFile(name)}' has shape [{string.Join(", ", src.shape)}], the model expects [{string.Join(", ", dst.shape)}]");
                    if (src.is_floating_point() && !src.isfinite().all().ToBoolean())
                        throw new InvalidDataException($"{weightsPath}: tensor '{InFile(name)}' holds NaN or infinite values; the adapter is damaged");
                    dst.copy_(src.to(dst.dtype));
                }
            return peft;
        }
        finally
        {
            foreach (var t in raw.Values) t.Dispose();
            foreach (var t in made) t.Dispose();
        }
    }

    /// <summary>The adapter's tensors under the state-dict names of the model as built here (the caller disposes them).</summary>
    public static Dictionary<string, Tensor> ReadTensors(string dir, AdapterInfo info)
    {
        var weightsPath = Path.Combine(dir, WeightsName);
        var raw = IO.SafetensorsFile.Load(weightsPath);
        var made = new List<Tensor>();
        try
        {
            int version = info.PeftOnly ? FormatVersion : info.Config["format_version"]!.GetValue<int>();
            var result = ToModelNames(raw, ModelFamilies.Find(info.Architecture), version, weightsPath, made);
            // What the result holds survives; the rest (fused originals) is released.
            foreach (var t in raw.Values.Concat(made).Where(t => !result.Values.Any(r => ReferenceEquals(r, t)))) t.Dispose();
            return result;
        }
        catch
        {
            foreach (var t in raw.Values.Concat(made)) t.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The adapter's tensors under the model's state-dict names: the prefix stripped, then the names of the first
    /// of the family's layouts that names them all mapped back, fused projections split onto their parts.
    /// </summary>
    private static Dictionary<string, Tensor> ToModelNames(Dictionary<string, Tensor> raw, ModelFamily? family, int version, string path, List<Tensor> made)
    {
        foreach (var key in raw.Keys.Where(k => !k.StartsWith(KeyPrefix, StringComparison.Ordinal)))
            throw new InvalidDataException($"{path}: tensor '{key}' does not start with '{KeyPrefix}', as every adapter tensor does");
        var stripped = raw.ToDictionary(kv => kv.Key[KeyPrefix.Length..], kv => kv.Value);
        if (version < 2 || family is null) return stripped;
        foreach (var layout in family.Layouts)
        {
            var result = new Dictionary<string, Tensor>();
            bool complete = true;
            foreach (var (key, t) in stripped)
            {
                if (Fused(family, key) is { } fused)
                {
                    var (parts, rest) = fused;
                    // lora_A reads the shared input: every part takes it whole. Everything else is per output row.
                    var pieces = rest == "lora_A.weight" ? parts.Select(_ => t).ToArray() : Chunk(t, parts.Count, key, path, made);
                    for (int j = 0; j < parts.Count; j++) result[parts[j] + "." + rest] = pieces[j];
                }
                else if (layout.ToOurs(key) is { } ours) result[ours] = t;
                else if (AtModelRoot(key)) result[key] = t;
                else { complete = false; break; }
            }
            if (complete) return result;
        }
        var unmapped = stripped.Keys.First(k => family.Layouts.All(l => l.ToOurs(k) is null) && Fused(family, k) is null);
        throw new InvalidDataException($"{path}: tensor '{KeyPrefix}{unmapped}' is named in none of the {family.Name} layouts read here ({string.Join(", ", family.Layouts.Select(l => l.Layout))})");
    }

    private static Tensor[] Chunk(Tensor t, int n, string key, string path, List<Tensor> made)
    {
        if (t.dim() == 0 || t.shape[0] % n != 0)
            throw new InvalidDataException($"{path}: tensor '{KeyPrefix}{key}' has shape [{string.Join(", ", t.shape)}]; a fused projection's needs a first dimension divisible by {n}");
        var pieces = t.chunk(n, 0).Select(c => c.contiguous()).ToArray();
        made.AddRange(pieces);
        return pieces;
    }

    /// <summary>For a name inside one of the family's fused projections: our part paths and the rest of the name.</summary>
    private static (IReadOnlyList<string> Parts, string Remainder)? Fused(ModelFamily family, string key)
    {
        foreach (var f in family.Fused)
        {
            var m = Regex.Match(key, "^" + Regex.Escape(f.Theirs).Replace(@"\{i}", @"(?<i>\d+)") + @"\.(?<rest>.+)$");
            if (m.Success)
                return (f.OursParts.Select(p => p.Replace("{i}", m.Groups["i"].Value)).ToList(), m.Groups["rest"].Value);
        }
        return null;
    }
}
