using System.Text.Json;
using CoeffTune.Adapters;
using CoeffTune.Checkpoints;
using CoeffTune.Data;
using CoeffTune.Export;
using CoeffTune.Methods;
using CoeffTune.Models;
using CoeffTune.Tests.Checkpoints;
using CoeffTune.Tests.Export;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SkiaSharp;
using TorchSharp.PyBridge;
using Xunit.Abstractions;

namespace CoeffTune.Tests.Cli;

/// <summary>
/// <c>coefftune export</c> of an image adapter: a small ViT written as a Hugging Face checkpoint, a coeff+ssf
/// adapter with every part set off its initial value, and ONNX Runtime's logits against <c>predict --json</c>
/// on the same PNG files.
/// </summary>
public sealed class ExportImageCommandTests(ITestOutputHelper output)
{
    private static readonly VitConfig Shape = new()
    { ImageSize = 16, PatchSize = 4, Channels = 3, Dim = 32, Depth = 2, Heads = 4, MlpDim = 64, Classes = 3, LayerNormEps = 1e-6 };

    [Fact]
    public void Exported_vit_matches_predict_json_on_image_files()
    {
        using var tmp = new TempDir();
        var basePath = tmp.File("vit/model.safetensors");
        using (var original = new VisionTransformer(Shape))
        {
            CheckpointTestFiles.Randomize(original, seed: 4);
            Safetensors.SaveStateDict(basePath, CheckpointTestFiles.VitToHuggingFace(original));
        }
        tmp.File("vit/config.json", """{"num_attention_heads": 4, "layer_norm_eps": 1e-6}""");
        var (model, _) = VitCheckpoint.Load(basePath, classes: 3);
        var peft = PeftModel.Wrap(model, "coeff+ssf");
        OnnxExportTests.SetAdapter(peft, seed: 12);
        var adapter = Path.Combine(tmp.Path, "adapter");
        AdapterFile.Save(peft, adapter, basePath, ["cat", "dog", "owl"]);
        var images = Enumerable.Range(0, 3).Select(i => RandomPng(tmp.File($"images/{i}.png"), 16, seed: i)).ToArray();

        var outPath = Path.Combine(tmp.Path, "export", "vit.onnx");
        var (code, stdout, stderr) = CliRunner.Run("export", "--adapter", adapter, "--out", outPath);
        Assert.True(code == 0, stderr);
        Assert.Contains("merged ssf", stdout);
        Assert.Equal(["vit.onnx"], Directory.GetFiles(Path.GetDirectoryName(outPath)!).Select(Path.GetFileName).ToArray());

        var (predictCode, predictOut, predictErr) = CliRunner.Run(["predict", "--adapter", adapter, "--json", .. images]);
        Assert.True(predictCode == 0, predictErr);
        using var doc = JsonDocument.Parse(predictOut);
        var expected = doc.RootElement.GetProperty("predictions").EnumerateArray()
            .Select(p => p.GetProperty("logits").EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();

        using var session = new InferenceSession(outPath);
        Assert.Equal([OnnxExporter.PixelValues], session.InputMetadata.Keys.ToArray());
        Assert.Equal(new[] { -1, 3, 16, 16 }, session.InputMetadata[OnnxExporter.PixelValues].Dimensions);
        var pixels = images.SelectMany(p => ImageFolderReader.Decode(p, p, 16, 16, 3)).ToArray();
        using var results = session.Run([NamedOnnxValue.CreateFromTensor(OnnxExporter.PixelValues, new DenseTensor<float>(pixels, [images.Length, 3, 16, 16]))]);
        var logits = results.Single(r => r.Name == OnnxExporter.LogitsName).AsTensor<float>();
        double worst = 0;
        for (int i = 0; i < images.Length; i++)
            for (int c = 0; c < 3; c++) worst = Math.Max(worst, Math.Abs(expected[i][c] - logits[i, c]));
        output.WriteLine($"ViT coeff+ssf: max |ONNX Runtime - predict --json| logits {worst:E2}; {new FileInfo(outPath).Length:N0} bytes");
        Assert.True(worst <= 1e-4, $"logits differ by {worst:E2}");
        Assert.Equal(["cat", "dog", "owl"], JsonSerializer.Deserialize<string[]>(session.ModelMetadata.CustomMetadataMap[OnnxExporter.MetadataKeys.Labels]));

        // Sentence embeddings are for text models: refused, naming the flag, before anything is written.
        var embedPath = Path.Combine(tmp.Path, "export", "embed.onnx");
        var (embedCode, embedOut, embedErr) = CliRunner.Run("export", "--adapter", adapter, "--out", embedPath, "--embeddings");
        Assert.Equal(1, embedCode);
        Assert.Equal("", embedOut);
        Assert.StartsWith("error: --embeddings", Assert.Single(embedErr.Trim().Split('\n')));
        Assert.False(File.Exists(embedPath));
    }

    /// <summary>A PNG of seeded random opaque colours.</summary>
    private static string RandomPng(string path, int size, int seed)
    {
        var random = new Random(seed);
        using var bmp = new SKBitmap(new SKImageInfo(size, size, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        for (int y = 0; y < size; y++)
            for (int x = 0; x < size; x++)
                bmp.SetPixel(x, y, new SKColor((byte)random.Next(256), (byte)random.Next(256), (byte)random.Next(256)));
        using var img = SKImage.FromBitmap(bmp);
        using var encoded = img.Encode(SKEncodedImageFormat.Png, 100);
        File.WriteAllBytes(path, encoded.ToArray());
        return path;
    }
}
