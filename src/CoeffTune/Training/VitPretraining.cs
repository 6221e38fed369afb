using System.Text.Json;
using CoeffTune.Assets;
using CoeffTune.Checkpoints;
using CoeffTune.Data;
using CoeffTune.Methods;
using CoeffTune.Models;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace CoeffTune.Training;

/// <summary>Settings of the small ViT pretrained here on Fashion-MNIST (no pretrained ViT can be downloaded).</summary>
public sealed record PretrainOptions
{
    public int Epochs { get; init; } = 3;
    /// <summary>Training images used (null: all 60,000).</summary>
    public int? TrainImages { get; init; }
    public int BatchSize { get; init; } = 128;
    public double LearningRate { get; init; } = 2e-3;
    public int Seed { get; init; } = 0;
    public string Device { get; init; } = "cpu";

    /// <summary>The cache folder name: one per distinct setting, so a quick pretraining never stands in for the full one.</summary>
    public string CacheName => TrainImages is null && Epochs == 3 ? "vit-fmnist" : $"vit-fmnist-{TrainImages?.ToString() ?? "all"}x{Epochs}";

    /// <summary>
    /// The options a name stands for: "vit-fmnist" is <paramref name="template"/> itself (the full pretraining by
    /// default), "vit-fmnist-2000x1" and the like fix the images and epochs, keeping the template's device and
    /// batch settings; null when <paramref name="name"/> is not such a name.
    /// </summary>
    public static PretrainOptions? FromCacheName(string name, PretrainOptions? template = null)
    {
        template ??= new PretrainOptions();
        if (name == "vit-fmnist") return template;
        var m = System.Text.RegularExpressions.Regex.Match(name, @"^vit-fmnist-(all|\d+)x(\d+)$");
        if (!m.Success) return null;
        return template with { TrainImages = m.Groups[1].Value == "all" ? null : int.Parse(m.Groups[1].Value), Epochs = int.Parse(m.Groups[2].Value) };
    }
}

/// <summary>What the pretraining produced: where the weights are and how good the model is on the Fashion-MNIST test set.</summary>
public sealed record PretrainedVit(string WeightsPath, VitConfig Config, double TestAccuracy, double Seconds);

/// <summary>
/// Pretrains <see cref="VitConfig.Tiny28"/> on Fashion-MNIST with full fine-tuning from random
/// initialisation, once; later calls read the cached weights.
/// </summary>
public static class VitPretraining
{
    public const string WeightsFile = "model.safetensors";
    public const string InfoFile = "pretrain.json";
    /// <summary>
    /// The version of the pretraining code (model, data, schedule). A cached model made by another version is
    /// pretrained anew, so a change to this code never leaves a stale model in use; raise it with every such change.
    /// </summary>
    public const int CodeVersion = 2;

    /// <summary>Whether the ViT <paramref name="o"/> describes is already pretrained in the cache.</summary>
    public static bool IsCached(PretrainOptions o, AssetCache? cache = null)
    {
        var dir = (cache ?? AssetCache.Default).PathFor(o.CacheName);
        return CachedVersion(Path.Combine(dir, InfoFile)) == CodeVersion && File.Exists(Path.Combine(dir, WeightsFile));
    }

    private static int? CachedVersion(string info) => AssetCache.RecordedVersion(info, unversioned: 1);

    public static PretrainedVit Ensure(PretrainOptions o, AssetCache? cache = null, TextWriter? log = null, ITrainingObserver? observer = null)
    {
        cache ??= AssetCache.Default;
        log ??= TextWriter.Null;
        var dir = cache.PathFor(o.CacheName);
        var info = Path.Combine(dir, InfoFile);
        if (IsCached(o, cache))
        {
            var j = JsonDocument.Parse(File.ReadAllText(info)).RootElement;
            return new PretrainedVit(Path.Combine(dir, WeightsFile), VitConfig.Tiny28(), j.GetProperty("test_accuracy").GetDouble(), j.GetProperty("seconds").GetDouble());
        }
        if (CachedVersion(info) is int old)
            log.WriteLine($"the cached {o.CacheName} was pretrained by version {old} of the pretraining code, this is version {CodeVersion}: pretraining anew");
        // One pretraining per cache folder at a time: a second process is refused, naming the folder, rather than mixing checkpoints.
        using var runFolder = RunFolder.Acquire(Path.Combine(dir, "run"), log);
        if (IsCached(o, cache)) return Ensure(o, cache, log, observer);
        log.WriteLine($"pretraining a ViT ({o.CacheName}) on Fashion-MNIST; cached in {dir} for later runs");
        var task = TaskCatalog.Load("fashion-mnist", cache, log);
        var train = task.ImageTrain;
        if (o.TrainImages is int n) train = train.Subset(Sampling.Stratified(train, n, o.Seed));
        torch.manual_seed(o.Seed);
        var model = new VisionTransformer(VitConfig.Tiny28(task.Classes.Count));
        var peft = PeftModel.Wrap(model, "full");
        var trainer = new Trainer(peft, new TrainOptions
        {
            Epochs = o.Epochs, BatchSize = o.BatchSize, LearningRate = o.LearningRate, WeightDecay = 0.05,
            Seed = o.Seed, Device = o.Device, CheckpointEvery = 200,
        }, observer);
        var test = new ImageBatchSource(task.ImageTest);
        var result = trainer.Fit(new ImageBatchSource(train), test, Path.Combine(dir, "run"), resume: true);
        var acc = Trainer.Evaluate(model, test, 256, torch.device(o.Device)).Accuracy;
        var state = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().cpu());
        IO.AtomicFile.Write(Path.Combine(dir, WeightsFile), tmp => Safetensors.SaveStateDict(tmp, state));
        // Written last: its presence, with this code's version, marks the pretrained model complete.
        IO.AtomicFile.WriteAllText(info, JsonSerializer.Serialize(new
        {
            version = CodeVersion, test_accuracy = acc, seconds = result.Seconds, epochs = o.Epochs, train_images = train.Count,
        }));
        Directory.Delete(Path.Combine(dir, "run"), true);
        log.WriteLine($"pretrained ViT: Fashion-MNIST test accuracy {acc:P2} in {result.Seconds:F0} s");
        return new PretrainedVit(Path.Combine(dir, WeightsFile), VitConfig.Tiny28(), acc, result.Seconds);
    }

    /// <summary>The pretrained backbone with a fresh head of <paramref name="classes"/> outputs.</summary>
    public static VisionTransformer Load(PretrainedVit p, int classes)
    {
        var model = new VisionTransformer(p.Config with { Classes = classes });
        var w = CoeffTune.IO.SafetensorsFile.Load(p.WeightsPath);
        foreach (var k in w.Keys.Where(k => k.StartsWith("head.")).ToList()) { w[k].Dispose(); w.Remove(k); }
        StateDictLoader.Load(model, w, p.WeightsPath, strict: true, freshPrefixes: new[] { model.HeadName });
        foreach (var t in w.Values) t.Dispose();
        return model;
    }
}
