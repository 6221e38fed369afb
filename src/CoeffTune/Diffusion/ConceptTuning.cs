using CoeffTune.Adapters;
using CoeffTune.Data;
using CoeffTune.Methods;
using CoeffTune.Models.Dit;
using CoeffTune.Training;

namespace CoeffTune.Diffusion;

/// <summary>
/// Settings of concept customisation (DreamBooth-style, the paper's SDXL experiment at small scale): a rare token bound
/// to a few images of one concept through the caption "a photo of {token}". The paper's settings: LoRA or DoRA of rank 2
/// plus Coeff-Tuning, Adam at 3e-4, 200 steps, 4-9 images.
/// </summary>
public sealed record ConceptOptions
{
    /// <summary>The rare token that comes to name the concept.</summary>
    public string Token { get; init; } = "sks";
    /// <summary>The word for a picture in the captions ("photo" for clothes, "image" for digits), as in pretraining.</summary>
    public string Medium { get; init; } = "photo";
    public int Steps { get; init; } = 200;
    public int BatchSize { get; init; } = 4;
    public double LearningRate { get; init; } = 3e-4;
    /// <summary>Probability of the empty caption in training; 0 (the concept's images always carry the token) by default.</summary>
    public double CaptionDropout { get; init; }
    public int Seed { get; init; }
    public string Device { get; init; } = "cpu";

    /// <summary>The caption every concept image is trained with, e.g. "a photo of sks".</summary>
    public string Caption => CaptionedCorpus.Caption(ImageAttribute.Plain, Medium, Token);

    public ConceptOptions Validate()
    {
        if (string.IsNullOrWhiteSpace(Token) || Token.Any(char.IsWhiteSpace))
            throw new ArgumentException($"the concept token must be one word, got '{Token}'", nameof(Token));
        if (string.IsNullOrWhiteSpace(Medium) || Medium.Any(char.IsWhiteSpace))
            throw new ArgumentException($"the medium must be one word (photo, image, ...), got '{Medium}'", nameof(Medium));
        if (Steps < 1) throw new ArgumentOutOfRangeException(nameof(Steps), Steps, "steps must be positive");
        if (BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "the batch size must be positive");
        if (!(LearningRate > 0)) throw new ArgumentOutOfRangeException(nameof(LearningRate), LearningRate, "the learning rate must be positive");
        return this;
    }
}

/// <summary>What a concept run produced: the adapter's folder, the wrapped model and the training history.</summary>
public sealed record ConceptResult(string AdapterDir, PeftModel Peft, TrainResult Training);

/// <summary>Binds a rare token to a concept shown in a few images by training an adapter on a pretrained text-to-image model.</summary>
public static class ConceptTuning
{
    public const string AdapterFolder = "adapter";
    public const int MinImages = 1, MaxImages = 64;

    /// <summary>
    /// The concept's images: every PNG or JPEG file directly inside <paramref name="dir"/>, in name order, decoded to the
    /// model's channels and size (values in [0, 1]).
    /// </summary>
    public static (float[] Pixels, int Count) ReadImages(string dir, DitConfig shape)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: no such concept folder");
        var files = Directory.GetFiles(dir).Where(f => Path.GetExtension(f).ToLowerInvariant() is ".png" or ".jpg" or ".jpeg")
            .Order(StringComparer.Ordinal).ToList();
        if (files.Count < MinImages || files.Count > MaxImages)
            throw new InvalidDataException($"{dir}: {files.Count} PNG/JPEG images; a concept needs {MinImages} to {MaxImages} (the paper uses 4-9)");
        var pixels = files.SelectMany(f => ImageFolderReader.Decode(f, Path.GetFileName(f), shape.ImageSize, shape.ImageSize, shape.Channels)).ToArray();
        return (pixels, files.Count);
    }

    /// <summary>
    /// Wraps <paramref name="pipeline"/>'s model with <paramref name="methods"/> (e.g. Coeff-Tuning and LoRA of rank 2 on
    /// the queries and values of self- and cross-attention), trains them on the concept's images captioned
    /// <see cref="ConceptOptions.Caption"/>, and saves the adapter in <paramref name="outDir"/>/adapter. The images are also
    /// the set the best weights are chosen on (fixed noise and timesteps, see <see cref="DiffusionObjective"/>).
    /// </summary>
    public static ConceptResult Run(TextToImage pipeline, string conceptDir, IMethodConfig[] methods, ConceptOptions options, string outDir,
        string baseName, ITrainingObserver? observer = null, TextWriter? log = null)
    {
        options.Validate();
        if (pipeline.Adapter is not null) throw new InvalidOperationException("the pipeline already has an adapter; customise the base model");
        var (pixels, count) = ReadImages(conceptDir, pipeline.Model.Config);
        var c = pipeline.Model.Config;
        using var images = new CaptionedImages(pixels, c.Channels, c.ImageSize, c.ImageSize, Enumerable.Repeat(options.Caption, count).ToList(), pipeline.Encoder,
            Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(conceptDir))));
        using var runFolder = RunFolder.Acquire(outDir, log);
        var peft = PeftModel.Wrap(pipeline.Model, DiffusionTransformer.Architecture, Array.Empty<string>(), methods);
        log?.WriteLine($"concept '{options.Token}': {count} images captioned \"{options.Caption}\"; {peft.Report()}");
        int stepsPerEpoch = (count + options.BatchSize - 1) / options.BatchSize;
        var trainer = new Trainer<DiffusionBatch>(peft, new DiffusionObjective(pipeline.Schedule, options.CaptionDropout), new TrainOptions
        {
            Epochs = (options.Steps + stepsPerEpoch - 1) / stepsPerEpoch, MaxSteps = options.Steps, BatchSize = options.BatchSize,
            LearningRate = options.LearningRate, WeightDecay = 0, WarmupFraction = 0, ClipNorm = 1.0, Seed = options.Seed,
            Device = options.Device, CheckpointEvery = Math.Max(50, stepsPerEpoch),
        }, observer);
        var result = trainer.Fit(images, images, outDir);
        pipeline.Model.eval();
        pipeline.Adapter = peft;
        var adapterDir = Path.Combine(outDir, AdapterFolder);
        AdapterFile.Save(peft, adapterDir, baseName);
        return new ConceptResult(adapterDir, peft, result);
    }
}
