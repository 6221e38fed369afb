using CoeffTune.Adapters;
using CoeffTune.Assets;
using CoeffTune.Methods;
using CoeffTune.Models.Dit;
using static TorchSharp.torch;

namespace CoeffTune.Diffusion;

/// <summary>
/// A text-to-image pipeline: the frozen caption encoder, the diffusion transformer (with an adapter, when one is
/// loaded) and its noise schedule. Generation is seeded: the same prompts, options and seed give the same images.
/// </summary>
public sealed class TextToImage : IDisposable
{
    public DiffusionTransformer Model { get; }
    public NoiseSchedule Schedule { get; }
    public ICaptionEncoder Encoder { get; }
    public PretrainedDit Base { get; }
    /// <summary>The loaded adapter, or null for the base model.</summary>
    public PeftModel? Adapter { get; internal set; }

    public TextToImage(DiffusionTransformer model, NoiseSchedule schedule, ICaptionEncoder encoder, PretrainedDit info)
    {
        if (encoder.Width != model.Config.ContextDim)
            throw new ArgumentException($"the caption encoder gives {encoder.Width}-wide states, the model reads {model.Config.ContextDim}");
        Model = model;
        Schedule = schedule;
        Encoder = encoder;
        Base = info;
    }

    /// <summary>
    /// The model named <paramref name="name"/>: "dit-fmnist" (or a cache name such as "dit-fmnist-300"), pretrained on
    /// first use unless <paramref name="mayPretrain"/> is false, or a folder holding a pretrained model
    /// (<see cref="DitPretraining.InfoFile"/> and its weights); with its text encoder, fetched into the cache if needed.
    /// </summary>
    public static TextToImage Load(string name, AssetCache? cache = null, TextWriter? log = null, bool mayPretrain = true, DitPretrainOptions? template = null,
        Training.ITrainingObserver? observer = null)
    {
        PretrainedDit info;
        if (DitPretrainOptions.FromCacheName(name, template) is { } options)
        {
            if (!mayPretrain && !DitPretraining.IsCached(options, cache))
                throw new InvalidDataException($"model '{name}' is not in the cache ({(cache ?? AssetCache.Default).PathFor(options.CacheName)}); pretrain it first");
            info = DitPretraining.Ensure(options, cache, log, observer);
        }
        else if (Directory.Exists(name))
            info = DitPretraining.Read(name) ?? throw new InvalidDataException($"{name}: no pretrained diffusion model here ({DitPretraining.InfoFile} and {DitPretraining.WeightsFile} of this version)");
        else throw new ArgumentException($"'{name}' is neither a known diffusion model ({DitPretraining.CacheName}) nor a folder holding one", nameof(name));
        if (info.TextEncoder != CaptionEncoder.DefaultModel)
            throw new InvalidDataException($"{name}: conditioned on the text encoder '{info.TextEncoder}', this library conditions on '{CaptionEncoder.DefaultModel}'");
        var model = DitPretraining.Load(info);
        var encoder = CaptionEncoder.MiniLM(cache, log);
        return new TextToImage(model, NoiseSchedule.Create(info.Schedule, info.Timesteps), encoder, info);
    }

    /// <summary>True when loading <paramref name="name"/> would pretrain it first (a model pretrained here that is not in the cache yet).</summary>
    public static bool NeedsPretraining(string name, AssetCache? cache = null) =>
        DitPretrainOptions.FromCacheName(name) is { } o && !DitPretraining.IsCached(o, cache);

    /// <summary>Loads an adapter folder (written by <see cref="AdapterFile.Save"/> for this model) onto the model.</summary>
    public PeftModel LoadAdapter(string dir)
    {
        if (Adapter is not null) throw new InvalidOperationException("an adapter is already loaded");
        Adapter = AdapterFile.Load(Model, DiffusionTransformer.Architecture, Array.Empty<string>(), dir);
        Model.eval();
        return Adapter;
    }

    /// <summary>One image per prompt, in [-1, 1], (N, C, H, W) on the CPU; <paramref name="progress"/> gets (steps done, steps).</summary>
    public Tensor Generate(IReadOnlyList<string> prompts, long seed, SamplerOptions options, Action<int, int>? progress = null)
    {
        if (prompts.Count == 0) throw new ArgumentException("no prompts to generate images for");
        using var states = Encoder.Encode(prompts);
        using var empty = Encoder.Encode([""]);
        return DdimSampler.Sample(Model, Schedule, states, empty, seed, options, progress);
    }

    public void Dispose()
    {
        Model.Dispose();
        (Encoder as IDisposable)?.Dispose();
    }
}
