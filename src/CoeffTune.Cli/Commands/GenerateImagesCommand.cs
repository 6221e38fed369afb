using System.CommandLine;
using System.Diagnostics;
using CoeffTune.Diffusion;
using CoeffTune.IO;
using TorchSharp;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune generate-images --model dit-fmnist --prompt TEXT --out grid.png</c>: text-to-image sampling, seeded.</summary>
public static class GenerateImagesCommand
{
    public static Command Create()
    {
        var defaults = new SamplerOptions();
        var model = new Option<string>("--model") { Description = $"diffusion model: {DitPretraining.CacheName} (pretrained here on first use) or a folder holding one", DefaultValueFactory = _ => DitPretraining.CacheName };
        var adapter = new Option<string?>("--adapter") { Description = "adapter folder trained on this model (LoRA, DoRA, Coeff-Tuning, ...)" };
        var prompt = new Option<string>("--prompt") { Description = "what to draw, e.g. \"a rotated photo of a sneaker\"", Required = true };
        var n = new Option<int>("--n") { Description = "images to generate", DefaultValueFactory = _ => 16 };
        var seed = new Option<long>("--seed") { Description = "random seed: the same seed gives the same images", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--out") { Description = "the PNG grid to write", DefaultValueFactory = _ => "grid.png" };
        var outDir = new Option<string?>("--out-dir") { Description = "also write each image as its own PNG in this folder" };
        var steps = new Option<int>("--steps") { Description = "DDIM sampling steps", DefaultValueFactory = _ => defaults.Steps };
        var guidance = new Option<double>("--guidance") { Description = "classifier-free guidance scale (1: no guidance)", DefaultValueFactory = _ => defaults.Guidance };
        var eta = new Option<double>("--eta") { Description = "DDIM eta: 0 deterministic, 1 as noisy as DDPM", DefaultValueFactory = _ => defaults.Eta };
        var scale = new Option<int>("--scale") { Description = "grid pixels per image pixel", DefaultValueFactory = _ => 2 };
        var device = new Option<string>("--device") { Description = "cpu, cuda, cuda:1, ...", DefaultValueFactory = _ => "cpu" };
        var judge = new Option<bool>("--judge") { Description = $"also say what the image judge ({ImageJudge.CacheName}, trained here on first use) sees: each image's class and attribute, counted" };
        var cmd = new Command("generate-images", "Generate images from a text prompt with a text-to-image diffusion model, optionally with an adapter")
            { model, adapter, prompt, n, seed, output, outDir, steps, guidance, eta, scale, device, judge };
        cmd.SetAction(p => Run(p.GetValue(model)!, p.GetValue(adapter), p.GetValue(prompt)!, p.GetValue(n), p.GetValue(seed), p.GetValue(output)!,
            p.GetValue(outDir), new SamplerOptions { Steps = p.GetValue(steps), Guidance = p.GetValue(guidance), Eta = p.GetValue(eta) },
            p.GetValue(scale), EvalCommand.CheckDevice(p.GetValue(device)!), p.GetValue(judge)));
        return cmd;
    }

    private static readonly Dictionary<string, string> Flags = new()
    {
        [nameof(SamplerOptions.Steps)] = "--steps", [nameof(SamplerOptions.Guidance)] = "--guidance", [nameof(SamplerOptions.Eta)] = "--eta",
    };

    private static int Run(string modelName, string? adapterDir, string prompt, int n, long seed, string output, string? outDir, SamplerOptions options, int scale, string device, bool judge)
    {
        if (n < 1 || n > 1024) throw new ArgumentException($"--n {n}: must be in 1..1024");
        if (scale < 1 || scale > 16) throw new ArgumentException($"--scale {scale}: must be in 1..16");
        if (string.IsNullOrWhiteSpace(prompt)) throw new ArgumentException("--prompt: empty; say what to draw");
        if (adapterDir is not null && !Directory.Exists(adapterDir)) throw new ArgumentException($"--adapter {adapterDir}: no such folder");
        var log = ConsoleProgress.Log;
        // A model pretrained here is pretrained on first use (tens of minutes on a CPU), with a progress bar.
        using var pipeline = TextToImage.NeedsPretraining(modelName)
            ? ConsoleProgress.Run($"pretraining {modelName}", (CoeffTune.Training.ITrainingObserver observer) => TextToImage.Load(modelName, log: log, observer: observer))
            : TextToImage.Load(modelName, log: log);
        CoeffTune.Cli.Cli.WithFlags(Flags, () => options.Validate(pipeline.Schedule.Steps));
        if (adapterDir is not null)
        {
            var peft = pipeline.LoadAdapter(adapterDir);
            log.WriteLine($"adapter {adapterDir}: {peft.Recipe}, {peft.Report()}");
        }
        pipeline.Model.to(TorchSharp.torch.device(device));
        var clock = Stopwatch.StartNew();
        using var images = ConsoleProgress.Run($"sampling {n} image{(n == 1 ? "" : "s")}", report =>
            pipeline.Generate(Enumerable.Repeat(prompt, n).ToList(), seed, options, (done, total) => report((double)done / total, $"step {done}/{total}")));
        double seconds = clock.Elapsed.TotalSeconds;
        ImageGrid.WriteGrid(images, output, scale);
        var written = outDir is null ? Array.Empty<string>() : ImageGrid.WriteEach(images, outDir);
        Console.WriteLine($"{n} image{(n == 1 ? "" : "s")} of \"{prompt}\" in {seconds:F1} s ({options.Steps} DDIM steps, guidance {options.Guidance}, eta {options.Eta}, seed {seed}): " +
            $"wrote {output}{(outDir is null ? "" : $" and {written.Count} files in {outDir}")}");
        if (judge)
        {
            using var judgeModel = ImageJudge.Ensure(new JudgeOptions(), log: log);
            Console.WriteLine($"the judge ({judgeModel.Info.ClassAccuracy:P1} class accuracy on real test images) sees: {judgeModel.Judge(images, JudgedImages.ClassIn(prompt))}");
        }
        return 0;
    }
}
